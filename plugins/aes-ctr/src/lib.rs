//! `aes-ctr`: AES in counter mode, as Tahoe-LAFS encrypts immutable files.
//!
//! Tahoe uses AES-128 with a 128-bit big-endian counter starting from an
//! all-zero block; each file has its own key, so the fixed starting counter
//! never repeats a keystream. The same construction with a 256-bit key is
//! offered for grids that want it (`key_bits = 256`); such files are not
//! readable by Tahoe-LAFS. The aes crate picks AES-NI at run time.

use std::sync::Arc;

use aes::{Aes128, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use serde::Deserialize;
use tahoe_core::kinds::cipher::{Cipher, check_key_len};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};

/// The registry name.
pub const NAME: &str = "aes-ctr";

/// `[cipher.aes-ctr]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AesCtrConfig {
    /// 128 (Tahoe-compatible, the default) or 256.
    pub key_bits: u16,
}

impl Default for AesCtrConfig {
    fn default() -> Self {
        AesCtrConfig { key_bits: 128 }
    }
}

/// AES-CTR with a zero initial counter block.
#[derive(Debug, Clone, Copy)]
pub struct AesCtr {
    key_len: usize,
}

impl AesCtr {
    /// AES-128-CTR, Tahoe's cipher.
    pub fn aes128() -> Self {
        AesCtr { key_len: 16 }
    }

    /// AES-256-CTR.
    pub fn aes256() -> Self {
        AesCtr { key_len: 32 }
    }

    /// From a key size in bits (128 or 256).
    pub fn with_key_bits(bits: u16) -> Result<Self> {
        match bits {
            128 => Ok(Self::aes128()),
            256 => Ok(Self::aes256()),
            other => Err(Error::config_invalid(format!(
                "aes-ctr key_bits = {other} is not supported; use 128 or 256"
            ))),
        }
    }
}

fn apply<C: KeyIvInit + StreamCipher + StreamCipherSeek>(
    key: &[u8],
    offset: u64,
    data: &mut [u8],
) -> Result<()> {
    let mut c = C::new_from_slices(key, &[0u8; 16])
        .map_err(|_| Error::invalid_input("bad AES key or IV length"))?;
    c.try_seek(offset)
        .map_err(|_| Error::invalid_input(format!("offset {offset} is past the keystream")))?;
    c.try_apply_keystream(data)
        .map_err(|_| Error::invalid_input("data runs past the end of the keystream"))
}

impl Cipher for AesCtr {
    fn name(&self) -> &str {
        NAME
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
        check_key_len(self, key)?;
        // Files are addressed by u64 offsets; a range past the last one is
        // a caller's bug, not keystream to wrap around into.
        if offset.checked_add(data.len() as u64).is_none() {
            return Err(tahoe_core::Error::invalid_input(format!(
                "{} bytes at offset {offset} run past the largest file offset",
                data.len()
            )));
        }
        if self.key_len == 16 {
            apply::<ctr::Ctr128BE<Aes128>>(key, offset, data)
        } else {
            apply::<ctr::Ctr128BE<Aes256>>(key, offset, data)
        }
    }
}

/// Register `aes-ctr` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_cipher(
        NAME,
        "AES-CTR, seekable; 128-bit keys as in Tahoe-LAFS (default) or 256-bit",
        |ctx: &PluginContext| {
            let cfg: AesCtrConfig = ctx.config.parse()?;
            let cipher = AesCtr::with_key_bits(cfg.key_bits).map_err(|e| {
                e.context(format!(
                    "{}.key_bits{}",
                    ctx.config.key(),
                    ctx.config.origin("key_bits")
                ))
            })?;
            Ok(Arc::new(cipher) as Arc<dyn Cipher>)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// With a zero counter block the first keystream block is AES_k(0):
    /// a known answer for key 000102…0f.
    #[test]
    fn zero_counter_keystream_is_aes_of_zero_block() {
        let key = hex("000102030405060708090a0b0c0d0e0f");
        let mut block = [0u8; 16];
        AesCtr::aes128()
            .apply_keystream(&key, 0, &mut block)
            .unwrap();
        // AES-128(000102..0f, 00..00) = c6a13b37878f5b826f4f8162a1c8d879
        assert_eq!(block.to_vec(), hex("c6a13b37878f5b826f4f8162a1c8d879"));
    }
}
