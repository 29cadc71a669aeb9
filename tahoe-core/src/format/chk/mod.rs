//! Immutable files' formats (Tahoe's CHK): the URI extension block, the
//! share layout, the segmenting rules and one segment's encoding.

pub mod encode;
pub mod layout;
pub mod plan;
pub mod ueb;

use crate::error::{Error, Result};
use crate::kinds::cipher::Cipher;

/// The cipher URI:CHK files are encrypted with: Tahoe's format fixes
/// AES-128-CTR (provided by the `aes-ctr` plugin at its default 128 bits),
/// so that a CHK cap always means the same bytes. Another cipher would
/// make files that Tahoe, and our own downloads of CHK caps, read as
/// garbage; it is refused rather than recorded.
pub const CHK_CIPHER: &str = "aes-ctr";

/// Refuse any cipher but AES-128-CTR for CHK files.
pub fn check_chk_cipher(cipher: &dyn Cipher) -> Result<()> {
    if cipher.name() != CHK_CIPHER || cipher.key_len() != 16 {
        return Err(Error::config_invalid(format!(
            "URI:CHK files are encrypted with AES-128-CTR (cipher {CHK_CIPHER} with 128-bit \
             keys) as Tahoe-LAFS's format requires, but cipher {} with {}-bit keys was given",
            cipher.name(),
            cipher.key_len() * 8
        )));
    }
    Ok(())
}
