//! The byte records that carry lists across the boundary, little-endian.
//! Both sides use these functions, so the formats exist once:
//!
//! - share info: `shnum u8, kind u8 (0 immutable, 1 mutable), size u64`;
//! - test vector: `offset u64, length u64, n u64, n bytes expected`;
//! - write vector: `offset u64, n u64, n bytes`;
//! - lease: `renew [32], cancel [32], expires_at u64`.
//!
//! Decoding checks every length, so a record list cut short or padded is
//! an error, never a panic or a wrong value.

use crate::{
    Error, ErrorKind, Lease, Result, ShareInfo, ShareKind, StorageIndex, TestVector, WriteVector,
};

const SHARE_INFO: usize = 10;
const LEASE: usize = 72;

fn bad(what: &str) -> Error {
    Error::new(ErrorKind::Corrupt, format!("malformed {what} records"))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self, what: &str) -> Result<Vec<u8>> {
        let n = usize::try_from(self.u64(what)?).map_err(|_| bad(what))?;
        Ok(self.take(n, what)?.to_vec())
    }
}

/// Encode share infos.
pub fn encode_share_infos(infos: &[ShareInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(infos.len() * SHARE_INFO);
    for i in infos {
        out.push(i.shnum);
        out.push(i.kind.code());
        out.extend_from_slice(&i.size.to_le_bytes());
    }
    out
}

/// Decode share infos.
pub fn decode_share_infos(b: &[u8]) -> Result<Vec<ShareInfo>> {
    if !b.len().is_multiple_of(SHARE_INFO) {
        return Err(bad("share info"));
    }
    b.chunks_exact(SHARE_INFO)
        .map(|r| {
            let kind = ShareKind::from_code(r[1]).ok_or_else(|| bad("share info"))?;
            let mut size = [0u8; 8];
            size.copy_from_slice(&r[2..]);
            Ok(ShareInfo {
                shnum: r[0],
                kind,
                size: u64::from_le_bytes(size),
            })
        })
        .collect()
}

/// Encode test vectors (of any byte type: the node encodes its own).
pub fn encode_tests<B: AsRef<[u8]>>(tests: &[TestVector<B>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tests.iter().map(|t| 24 + t.expected.as_ref().len()).sum());
    for t in tests {
        let expected = t.expected.as_ref();
        out.extend_from_slice(&t.offset.to_le_bytes());
        out.extend_from_slice(&t.length.to_le_bytes());
        out.extend_from_slice(&(expected.len() as u64).to_le_bytes());
        out.extend_from_slice(expected);
    }
    out
}

/// Decode test vectors.
pub fn decode_tests(b: &[u8]) -> Result<Vec<TestVector>> {
    let mut r = Reader(b);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        out.push(TestVector {
            offset: r.u64("test vector")?,
            length: r.u64("test vector")?,
            expected: r.bytes("test vector")?,
        });
    }
    Ok(out)
}

/// Encode write vectors (of any byte type, as for tests).
pub fn encode_writes<B: AsRef<[u8]>>(writes: &[WriteVector<B>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(writes.iter().map(|w| 16 + w.data.as_ref().len()).sum());
    for w in writes {
        let data = w.data.as_ref();
        out.extend_from_slice(&w.offset.to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Decode write vectors.
pub fn decode_writes(b: &[u8]) -> Result<Vec<WriteVector>> {
    let mut r = Reader(b);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        out.push(WriteVector {
            offset: r.u64("write vector")?,
            data: r.bytes("write vector")?,
        });
    }
    Ok(out)
}

/// Encode storage indexes (16 bytes each).
pub fn encode_storage_indexes(sis: &[StorageIndex]) -> Vec<u8> {
    sis.concat()
}

/// Decode storage indexes.
pub fn decode_storage_indexes(b: &[u8]) -> Result<Vec<StorageIndex>> {
    if !b.len().is_multiple_of(16) {
        return Err(bad("storage index"));
    }
    Ok(b.chunks_exact(16)
        .map(|c| {
            let mut si = [0u8; 16];
            si.copy_from_slice(c);
            si
        })
        .collect())
}

/// Encode leases.
pub fn encode_leases(leases: &[Lease]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leases.len() * LEASE);
    for l in leases {
        out.extend_from_slice(&l.renew_secret);
        out.extend_from_slice(&l.cancel_secret);
        out.extend_from_slice(&l.expires_at.to_le_bytes());
    }
    out
}

/// Decode leases.
pub fn decode_leases(b: &[u8]) -> Result<Vec<Lease>> {
    if !b.len().is_multiple_of(LEASE) {
        return Err(bad("lease"));
    }
    b.chunks_exact(LEASE)
        .map(|r| {
            let mut l = Lease {
                renew_secret: [0; 32],
                cancel_secret: [0; 32],
                expires_at: 0,
            };
            l.renew_secret.copy_from_slice(&r[..32]);
            l.cancel_secret.copy_from_slice(&r[32..64]);
            let mut e = [0u8; 8];
            e.copy_from_slice(&r[64..]);
            l.expires_at = u64::from_le_bytes(e);
            Ok(l)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let infos = vec![
            ShareInfo {
                shnum: 3,
                kind: ShareKind::Mutable,
                size: 1 << 40,
            },
            ShareInfo {
                shnum: 0,
                kind: ShareKind::Immutable,
                size: 7,
            },
        ];
        let e = encode_share_infos(&infos);
        assert_eq!(decode_share_infos(&e).unwrap(), infos);
        assert!(decode_share_infos(&e[..e.len() - 1]).is_err());
        let mut wrong_kind = e.clone();
        wrong_kind[1] = 9;
        assert!(decode_share_infos(&wrong_kind).is_err());

        let tests = vec![
            TestVector {
                offset: 5,
                length: 3,
                expected: b"abc".to_vec(),
            },
            TestVector {
                offset: 0,
                length: 1,
                expected: Vec::new(),
            },
        ];
        let e = encode_tests(&tests);
        assert_eq!(decode_tests(&e).unwrap(), tests);
        assert!(decode_tests(&e[..e.len() - 1]).is_err());

        let writes = vec![WriteVector {
            offset: 9,
            data: vec![1, 2, 3],
        }];
        let mut e = encode_writes(&writes);
        assert_eq!(decode_writes(&e).unwrap(), writes);
        // A length running past the end.
        e[8] = 200;
        assert!(decode_writes(&e).is_err());

        let leases = vec![Lease {
            renew_secret: [1; 32],
            cancel_secret: [2; 32],
            expires_at: 99,
        }];
        let e = encode_leases(&leases);
        assert_eq!(decode_leases(&e).unwrap(), leases);
        assert!(decode_leases(&e[1..]).is_err());

        let sis = vec![[3u8; 16], [9u8; 16]];
        let e = encode_storage_indexes(&sis);
        assert_eq!(decode_storage_indexes(&e).unwrap(), sis);
        assert!(decode_storage_indexes(&e[1..]).is_err());
    }
}
