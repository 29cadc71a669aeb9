//! Immutable files: turning bytes into a cap and shares, and back.
//!
//! - [`plan`]: the sizes every share of a file will have (Tahoe's
//!   segmenting rules, the share layout);
//! - [`encode`]: one segment's CPU work, and the hash trees at the end;
//! - [`upload`]: the streaming upload pipeline, writing through a
//!   [`sink::ShareSink`];
//! - [`download`]: finding, verifying and decoding shares, streaming the
//!   plaintext (or a range of it) out;
//! - [`source`]: where plaintext comes from (files, memory, streams);
//! - [`client`]: upload and download over a set of servers.
//!
//! Everything here is written against the plugin traits only: any codec,
//! cipher, transport and backend.

pub mod client;
pub mod download;
pub mod encode;
pub mod placement;
pub mod plan;
pub mod sink;
pub mod source;
pub mod upload;

/// The encoding parameters of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingParams {
    /// Shares needed to read.
    pub k: u16,
    /// Distinct servers an upload must reach.
    pub happy: u16,
    /// Shares made.
    pub n: u16,
    /// Largest segment.
    pub max_segment_size: u64,
}

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
