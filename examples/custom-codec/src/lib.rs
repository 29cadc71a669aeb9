//! A tahoe codec in its own crate, built as a shared library: plain
//! replication. Every block is the whole segment, so any one of the n
//! blocks gives it back: it is the 1-of-n code, and refuses any other k.
//! Select it with `[codec] name = "replicate"` and `[encoding] k = 1`.
//! Files record their codec's name, so a node that downloads them needs
//! the library too.

use tahoe_api::{Error, ErrorKind, Result};

/// 1-of-n replication.
pub struct Replicate {
    n: usize,
}

impl tahoe_api::Codec for Replicate {
    const NAME: &'static str = "replicate";
    const DESCRIPTION: &'static str = "example: 1-of-n replication (examples/custom-codec)";

    fn new(k: u16, n: u16, _config: &str) -> Result<Self> {
        if k != 1 {
            return Err(Error::new(ErrorKind::InvalidInput, format!("replication is 1-of-n; k = {k} cannot be")));
        }
        Ok(Replicate { n: usize::from(n) })
    }

    fn block_len(&self, data_len: usize) -> usize {
        data_len
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![data.to_vec(); self.n])
    }

    fn decode(&self, blocks: &[(usize, &[u8])], data_len: usize) -> Result<Vec<u8>> {
        match blocks.first() {
            Some((_, b)) if b.len() == data_len => Ok(b.to_vec()),
            _ => Err(Error::new(ErrorKind::InvalidInput, "one block of the segment's length is needed")),
        }
    }
}

tahoe_api::export_codec!(Replicate);
