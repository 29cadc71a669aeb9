//! Immutable files: turning bytes into a cap and shares, and back.
//!
//! - [`upload`]: the streaming upload pipeline, writing through a
//!   [`sink::ShareSink`] (the sizes, the segment work and the hash trees
//!   are in `format::chk`);
//! - [`placement`]: where an upload's shares go, and servers of
//!   happiness;
//! - [`download`]: finding, verifying and decoding shares, streaming the
//!   plaintext (or a range of it) out;
//! - [`client`]: upload and download over a set of servers.
//!
//! Everything here is written against the plugin traits only: any codec,
//! cipher, transport and backend.

pub mod client;
pub mod download;
pub mod placement;
pub mod sink;
pub mod upload;
pub mod verify;

/// How an upload picks its encryption key.
#[derive(Clone)]
pub enum KeyMode {
    /// Tahoe's convergent encryption: the key is a hash of the plaintext,
    /// the encoding parameters and this secret, so the same file uploaded
    /// twice by nodes sharing the secret is stored once. Needs a first pass
    /// over the data.
    Convergent(Vec<u8>),
    /// A fresh random key: one pass, no deduplication.
    Random,
}

impl std::fmt::Debug for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMode::Convergent(_) => f.write_str("Convergent(<secret>)"),
            KeyMode::Random => f.write_str("Random"),
        }
    }
}
