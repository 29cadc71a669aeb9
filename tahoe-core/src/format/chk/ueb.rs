//! The URI extension block (UEB): what every share says about its file.
//!
//! Its hash is in the cap, so once a UEB matches the cap every value in it
//! is trusted: the codec and its parameters, the sizes, and the roots of the
//! ciphertext hash tree and the share hash tree, which in turn pin every
//! block of every share. Serialization is Tahoe's: the keys in sorted
//! order, each as `key:` followed by a netstring of the value (integers in
//! decimal).
//!
//! Parsing is for hostile input: bounded size, strict syntax, and every
//! number checked for consistency with the others before anything is
//! allocated from it.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::format::hash::{Hash, netstring, tagged_hash, tags};
use crate::kinds::codec::{CodecParams, MAX_SHARES};

/// The largest UEB accepted from a share (real ones are about 500 bytes).
pub const MAX_UEB_LEN: usize = 16 * 1024;

/// A parsed, self-consistent URI extension block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ueb {
    /// The codec's registry name (`crs` for Tahoe's).
    pub codec_name: String,
    /// The file size in bytes.
    pub size: u64,
    /// Bytes per segment except perhaps the last (a multiple of k).
    pub segment_size: u64,
    /// How many segments.
    pub num_segments: u64,
    /// The last segment's size padded to a multiple of k.
    pub tail_padded_size: u64,
    /// k.
    pub needed_shares: u16,
    /// n.
    pub total_shares: u16,
    /// Hash of the whole ciphertext.
    pub crypttext_hash: Hash,
    /// Root of the ciphertext segment hash tree.
    pub crypttext_root_hash: Hash,
    /// Root of the share hash tree.
    pub share_root_hash: Hash,
}

/// The segment sizes of a file: Tahoe's rules in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    /// File size.
    pub size: u64,
    /// Segment size (a multiple of k).
    pub segment_size: u64,
    /// Number of segments (at least 1).
    pub num_segments: u64,
    /// Bytes of data in the last segment.
    pub tail_size: u64,
    /// The last segment padded to a multiple of k.
    pub tail_padded_size: u64,
}

fn next_multiple(x: u64, k: u64) -> u64 {
    x.div_ceil(k) * k
}

impl Segmentation {
    /// Tahoe's effective segment size for a file: the maximum segment size,
    /// shrunk to the file size for small files, rounded up to a multiple of k.
    pub fn for_file(size: u64, max_segment_size: u64, k: u16) -> Result<Self> {
        if size == 0 || max_segment_size == 0 {
            return Err(Error::invalid_input(
                "empty files and zero segment sizes have no segments",
            ));
        }
        let k = u64::from(k);
        let segment_size = next_multiple(size.min(max_segment_size), k);
        Self::with_segment_size(size, segment_size, k)
    }

    fn with_segment_size(size: u64, segment_size: u64, k: u64) -> Result<Self> {
        let num_segments = size.div_ceil(segment_size);
        let tail_size = match size % segment_size {
            0 => segment_size,
            t => t,
        };
        Ok(Segmentation {
            size,
            segment_size,
            num_segments,
            tail_size,
            tail_padded_size: next_multiple(tail_size, k),
        })
    }

    /// The plaintext byte range of segment `i`.
    pub fn segment_range(&self, i: u64) -> std::ops::Range<u64> {
        let start = i * self.segment_size;
        start..(start + self.segment_size).min(self.size)
    }
}

fn decimal(v: &[u8], key: &str) -> Result<u64> {
    let s = std::str::from_utf8(v).map_err(|_| corrupt(format!("UEB {key} is not text")))?;
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(corrupt(format!("UEB {key} {s:?} is not a decimal number")));
    }
    s.parse()
        .map_err(|_| corrupt(format!("UEB {key} {s:?} is out of range")))
}

fn corrupt(msg: String) -> Error {
    Error::corrupt(msg)
}

fn codec_params(v: &[u8], key: &str) -> Result<(u64, u64, u64)> {
    let s = std::str::from_utf8(v).map_err(|_| corrupt(format!("UEB {key} is not text")))?;
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 {
        return Err(corrupt(format!("UEB {key} {s:?} is not size-k-n")));
    }
    Ok((
        decimal(parts[0].as_bytes(), key)?,
        decimal(parts[1].as_bytes(), key)?,
        decimal(parts[2].as_bytes(), key)?,
    ))
}

impl Ueb {
    /// The codec parameters the file was encoded with.
    pub fn codec_params(&self) -> Result<CodecParams> {
        CodecParams::new(self.needed_shares, self.total_shares)
    }

    /// The file's segmentation.
    pub fn segmentation(&self) -> Segmentation {
        Segmentation {
            size: self.size,
            segment_size: self.segment_size,
            num_segments: self.num_segments,
            tail_size: match self.size % self.segment_size {
                0 => self.segment_size,
                t => t,
            },
            tail_padded_size: self.tail_padded_size,
        }
    }

    /// Serialize as Tahoe does.
    pub fn pack(&self) -> Vec<u8> {
        let (k, n) = (self.needed_shares, self.total_shares);
        let mut fields: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        fields.insert("codec_name", self.codec_name.as_bytes().to_vec());
        fields.insert(
            "codec_params",
            format!("{}-{k}-{n}", self.segment_size).into_bytes(),
        );
        fields.insert(
            "tail_codec_params",
            format!("{}-{k}-{n}", self.tail_padded_size).into_bytes(),
        );
        fields.insert("size", self.size.to_string().into_bytes());
        fields.insert("segment_size", self.segment_size.to_string().into_bytes());
        fields.insert("num_segments", self.num_segments.to_string().into_bytes());
        fields.insert("needed_shares", k.to_string().into_bytes());
        fields.insert("total_shares", n.to_string().into_bytes());
        fields.insert("crypttext_hash", self.crypttext_hash.to_vec());
        fields.insert("crypttext_root_hash", self.crypttext_root_hash.to_vec());
        fields.insert("share_root_hash", self.share_root_hash.to_vec());
        let mut out = Vec::with_capacity(600);
        for (key, value) in fields {
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            out.extend_from_slice(&netstring(&value));
        }
        out
    }

    /// The hash that goes into the cap.
    pub fn hash(&self) -> Hash {
        hash_packed(&self.pack())
    }

    /// Parse and check a serialized UEB (from a share: untrusted until its
    /// hash has been compared with the cap's).
    pub fn parse(data: &[u8]) -> Result<Ueb> {
        if data.len() > MAX_UEB_LEN {
            return Err(corrupt(format!(
                "UEB of {} bytes is over the {MAX_UEB_LEN} limit",
                data.len()
            )));
        }
        let mut fields: BTreeMap<String, &[u8]> = BTreeMap::new();
        let mut rest = data;
        while !rest.is_empty() {
            let colon = rest
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| corrupt("UEB key without ':'".into()))?;
            let key = &rest[..colon];
            if key.is_empty()
                || !key
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'-')
            {
                return Err(corrupt("UEB key has characters outside [a-zA-Z_-]".into()));
            }
            rest = &rest[colon + 1..];
            let colon = rest
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| corrupt("UEB value without length".into()))?;
            let len = usize::try_from(decimal(&rest[..colon], "value length")?)
                .map_err(|_| corrupt("UEB value length out of range".into()))?;
            rest = &rest[colon + 1..];
            if len >= rest.len() || rest[len] != b',' {
                return Err(corrupt("UEB value runs past the end or lacks ','".into()));
            }
            let key = String::from_utf8_lossy(key).into_owned();
            if fields.insert(key.clone(), &rest[..len]).is_some() {
                return Err(corrupt(format!("UEB key {key} appears twice")));
            }
            rest = &rest[len + 1..];
        }
        let get = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| corrupt(format!("UEB lacks {k}")))
        };
        let hash = |k: &str| -> Result<Hash> {
            get(k)?
                .try_into()
                .map_err(|_| corrupt(format!("UEB {k} is not 32 bytes")))
        };
        let codec_name = std::str::from_utf8(get("codec_name")?)
            .map_err(|_| corrupt("UEB codec_name is not text".into()))?
            .to_string();
        let size = decimal(get("size")?, "size")?;
        let segment_size = decimal(get("segment_size")?, "segment_size")?;
        let num_segments = decimal(get("num_segments")?, "num_segments")?;
        let k = decimal(get("needed_shares")?, "needed_shares")?;
        let n = decimal(get("total_shares")?, "total_shares")?;
        let (cp_seg, cp_k, cp_n) = codec_params(get("codec_params")?, "codec_params")?;
        let (tail_padded, tk, tn) = codec_params(get("tail_codec_params")?, "tail_codec_params")?;
        if k == 0 || k > n || n > u64::from(MAX_SHARES) {
            return Err(corrupt(format!("UEB has k={k}, n={n}")));
        }
        if (cp_k, cp_n) != (k, n) || (tk, tn) != (k, n) || cp_seg != segment_size {
            return Err(corrupt(
                "UEB codec parameters disagree with its other fields".into(),
            ));
        }
        if size == 0 || segment_size == 0 || segment_size % k != 0 {
            return Err(corrupt(format!(
                "UEB sizes are inconsistent: size {size}, segment {segment_size}, k {k}"
            )));
        }
        let expect = Segmentation::with_segment_size(size, segment_size, k)?;
        if expect.num_segments != num_segments || expect.tail_padded_size != tail_padded {
            return Err(corrupt(format!(
                "UEB segment count {num_segments} or tail {tail_padded} does not follow from size {size} and segment size {segment_size}"
            )));
        }
        Ok(Ueb {
            codec_name,
            size,
            segment_size,
            num_segments,
            tail_padded_size: tail_padded,
            needed_shares: k as u16,
            total_shares: n as u16,
            crypttext_hash: hash("crypttext_hash")?,
            crypttext_root_hash: hash("crypttext_root_hash")?,
            share_root_hash: hash("share_root_hash")?,
        })
    }
}

/// The UEB hash of serialized bytes.
pub fn hash_packed(packed: &[u8]) -> Hash {
    tagged_hash(tags::UEB, packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ueb {
        Ueb {
            codec_name: "crs".into(),
            size: 1000,
            segment_size: 300,
            num_segments: 4,
            tail_padded_size: 102,
            needed_shares: 3,
            total_shares: 10,
            crypttext_hash: [1; 32],
            crypttext_root_hash: [2; 32],
            share_root_hash: [3; 32],
        }
    }

    #[test]
    fn pack_is_sorted_netstrings() {
        let p = sample().pack();
        let text = String::from_utf8_lossy(&p);
        assert!(
            text.starts_with("codec_name:3:crs,codec_params:8:300-3-10,crypttext_hash:32:"),
            "{text}"
        );
        assert!(
            text.ends_with("tail_codec_params:8:102-3-10,total_shares:2:10,"),
            "{text}"
        );
        assert_eq!(Ueb::parse(&p).unwrap(), sample());
    }

    #[test]
    fn segmentation_rules() {
        let s = Segmentation::for_file(56, 131072, 3).unwrap();
        assert_eq!(
            (
                s.segment_size,
                s.num_segments,
                s.tail_size,
                s.tail_padded_size
            ),
            (57, 1, 56, 57)
        );
        let s = Segmentation::for_file(262145, 131072, 3).unwrap();
        assert_eq!(s.segment_size, 131073);
        assert_eq!(
            (s.num_segments, s.tail_size, s.tail_padded_size),
            (2, 131072, 131073)
        );
        let s = Segmentation::for_file(131072 * 2, 131072, 1).unwrap();
        assert_eq!((s.num_segments, s.tail_size), (2, 131072));
    }

    #[test]
    fn rejects_inconsistent_or_hostile() {
        let good = sample().pack();
        let cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(),
            [good.clone(), b"size:1:5,".to_vec()].concat(),
            String::from_utf8_lossy(&good)
                .replace("num_segments:1:4", "num_segments:1:5")
                .into_bytes(),
            String::from_utf8_lossy(&good)
                .replace("total_shares:2:10", "total_shares:1:2")
                .into_bytes(),
            String::from_utf8_lossy(&good)
                .replace("size:4:1000", "size:4:0000")
                .into_bytes(),
            b"codec_name:99999999999999999999:x,".to_vec(),
            vec![b'a'; MAX_UEB_LEN + 1],
            b"bad key!:1:x,".to_vec(),
        ];
        for c in cases {
            assert!(
                Ueb::parse(&c).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(&c)
            );
        }
    }
}
