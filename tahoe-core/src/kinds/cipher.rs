//! The cipher plugin kind.
//!
//! Files are encrypted with a stream cipher whose keystream can be entered at
//! any byte offset. That is what lets the pipelines encrypt and decrypt
//! segments on several cores at once and lets a ranged read decrypt only the
//! segments it fetched. A cipher provides confidentiality only: integrity
//! comes from the hash trees whose root is in the cap, so no MAC is wanted
//! here.
//!
//! The interface is stateless (key passed on every call) so one instance
//! serves every file and thread; key setup is cheap next to a segment.

use crate::error::{Error, Result};

/// A seekable stream cipher.
pub trait Cipher: Send + Sync {
    /// The registry name of this cipher.
    fn name(&self) -> &str;

    /// The key length in bytes this instance expects.
    fn key_len(&self) -> usize;

    /// XOR the keystream for `key`, starting at byte `offset` of the stream,
    /// into `data` (encrypts and decrypts alike).
    ///
    /// # Contract
    /// - `key.len()` must equal [`Cipher::key_len`], otherwise `InvalidInput`.
    /// - Seekable: applying at offset `o` to a buffer gives the same bytes as
    ///   applying from offset 0 to a longer buffer and keeping the part from
    ///   `o` on, for every `o` (not only block-aligned ones).
    /// - An offset range past the keystream's end is `InvalidInput`, never a
    ///   wrap-around that would reuse keystream.
    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()>;
}

/// Shared key-length check for [`Cipher::apply_keystream`] implementations.
pub fn check_key_len(cipher: &dyn Cipher, key: &[u8]) -> Result<()> {
    if key.len() != cipher.key_len() {
        return Err(Error::invalid_input(format!(
            "{} key must be {} bytes, got {}",
            cipher.name(),
            cipher.key_len(),
            key.len()
        )));
    }
    Ok(())
}
