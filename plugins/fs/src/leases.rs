//! The lease file of a storage index: fixed-size records, rewritten whole.

use std::fs::{self};
use std::io::ErrorKind as IoKind;
use std::path::Path;

use super::files::io_err;
use tahoe_core::kinds::storage::Lease;
use tahoe_core::{Error, Result};

pub(crate) const LEASES: &str = "leases";

pub(crate) const LEASE_RECORD: usize = 32 + 32 + 8;

pub(crate) fn encode_leases(leases: &[Lease]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leases.len() * LEASE_RECORD);
    for l in leases {
        out.extend_from_slice(&l.renew_secret);
        out.extend_from_slice(&l.cancel_secret);
        out.extend_from_slice(&l.expires_at.to_be_bytes());
    }
    out
}

pub(crate) fn decode_leases(path: &Path, data: &[u8]) -> Result<Vec<Lease>> {
    if !data.len().is_multiple_of(LEASE_RECORD) {
        return Err(Error::corrupt(format!(
            "lease file {} has {} bytes, not a multiple of {LEASE_RECORD}",
            path.display(),
            data.len()
        )));
    }
    Ok(data
        .chunks_exact(LEASE_RECORD)
        .map(|r| {
            let mut renew = [0u8; 32];
            let mut cancel = [0u8; 32];
            let mut exp = [0u8; 8];
            renew.copy_from_slice(&r[..32]);
            cancel.copy_from_slice(&r[32..64]);
            exp.copy_from_slice(&r[64..]);
            Lease {
                renew_secret: renew,
                cancel_secret: cancel,
                expires_at: u64::from_be_bytes(exp),
            }
        })
        .collect())
}

pub(crate) fn read_leases(path: &Path) -> Result<Vec<Lease>> {
    match fs::read(path) {
        Ok(data) => decode_leases(path, &data),
        Err(e) if e.kind() == IoKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_file_corruption_is_reported() {
        let e = decode_leases(Path::new("x"), &[0u8; 10]).unwrap_err();
        assert_eq!(e.kind(), tahoe_core::ErrorKind::Corrupt);
    }
}
