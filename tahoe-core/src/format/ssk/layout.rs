//! The bytes of SDMF and MDMF shares, as Tahoe-LAFS 1.20 writes them
//! (`allmydata/mutable/layout.py`; docs/mutable.md has the tables).
//!
//! Both start with a signed prefix (version, sequence number, root of the
//! share hash tree, encoding parameters) and an offset table; what follows
//! differs:
//!
//! ```text
//! SDMF (v0): prefix(75, with the 16-byte IV) offsets(32) | verification key
//!            | signature | share hash chain | block hash tree | block
//!            | encrypted private key
//! MDMF (v1): prefix(59) offsets(64) | encrypted private key | share hash chain
//!            | signature | verification key | (zeros up to 2167)
//!            | salt+block per segment | block hash tree
//! ```
//!
//! Parsing is strict: every offset must land where the encoding parameters
//! say it must, the regions must follow each other in the format's order,
//! and every length must be the one the parameters give. A share that
//! parses is one whose regions can be read without further bounds checks.

use crate::error::{Error, Result};
use crate::format::hash::Hash;
use crate::format::hashtree::node_count;
use crate::format::hashtree::{SHARE_HASH_ENTRY, pack_share_hashes, parse_share_hashes};

/// SDMF or MDMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutableFormat {
    /// One segment, one IV (Tahoe's original mutable format, version 0).
    Sdmf,
    /// Many segments with a salt each (version 1).
    Mdmf,
}

impl MutableFormat {
    /// The version byte shares start with.
    pub fn version_byte(self) -> u8 {
        match self {
            MutableFormat::Sdmf => 0,
            MutableFormat::Mdmf => 1,
        }
    }

    /// `sdmf` or `mdmf`.
    pub fn name(self) -> &'static str {
        match self {
            MutableFormat::Sdmf => "sdmf",
            MutableFormat::Mdmf => "mdmf",
        }
    }

    /// Parse `sdmf` / `mdmf` (any case).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sdmf" => Ok(MutableFormat::Sdmf),
            "mdmf" => Ok(MutableFormat::Mdmf),
            other => Err(Error::invalid_input(format!(
                "unknown mutable format {other:?}: expected sdmf or mdmf"
            ))),
        }
    }

    /// Length of the header (prefix and offset table).
    fn header_len(self) -> usize {
        match self {
            MutableFormat::Sdmf => SDMF_HEADER_LEN,
            MutableFormat::Mdmf => MDMF_HEADER_LEN,
        }
    }

    /// Length of the checkstring: the part of the prefix that tells
    /// versions apart, which writers test before they overwrite.
    pub fn checkstring_len(self) -> usize {
        match self {
            MutableFormat::Sdmf => 1 + 8 + 32 + 16,
            MutableFormat::Mdmf => 1 + 8 + 32,
        }
    }
}

/// Salt (and SDMF IV) length.
pub const SALT_LEN: usize = 16;
/// SDMF signed prefix: `>BQ32s16sBBQQ`.
const SDMF_PREFIX_LEN: usize = 75;
/// SDMF header: prefix and `>LLLLQQ`.
const SDMF_HEADER_LEN: usize = SDMF_PREFIX_LEN + 4 * 4 + 8 * 2;
/// MDMF signed prefix: `>BQ32sBBQQ`.
const MDMF_PREFIX_LEN: usize = 59;
/// MDMF header: prefix and eight `Q` offsets.
const MDMF_HEADER_LEN: usize = MDMF_PREFIX_LEN + 8 * 8;
/// Where MDMF share data starts: the header plus the room Tahoe reserves
/// for the private key (1220), signature (260), verification key (292) and
/// share hash chain (8 × 34).
const MDMF_SHARE_DATA: u64 = MDMF_HEADER_LEN as u64 + 1220 + 260 + 292 + 8 * 34;
/// One share hash chain entry: `>H32s`.
const CHAIN_ENTRY_LEN: usize = SHARE_HASH_ENTRY as usize;
/// Upper bounds on the variable regions of a share we accept.
const MAX_KEY_REGION: u64 = 4096;
const MAX_SIGNATURE: u64 = 1024;
/// A share hash chain holds one hash per level of a tree over ≤ 256 shares.
const MAX_CHAIN_ENTRIES: u64 = 8;
/// The most segments an MDMF file may have here (1 TiB at 128 KiB).
pub const MAX_SEGMENTS: u64 = 1 << 23;
/// The largest MDMF segment read here (Tahoe makes 128 KiB ones; a reader
/// holds a few segments at once).
pub const MAX_MDMF_SEGMENT_SIZE: u64 = 16 << 20;

/// The signed prefix of a share: what identifies a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Sequence number; higher is newer.
    pub seqnum: u64,
    /// Root of the share hash tree.
    pub root_hash: Hash,
    /// SDMF's IV (the data key's salt); all zeros... never: MDMF has none.
    pub iv: Option<[u8; SALT_LEN]>,
    /// Shares needed.
    pub k: u8,
    /// Shares made.
    pub n: u8,
    /// Segment size (a multiple of k).
    pub segment_size: u64,
    /// Plaintext length.
    pub data_length: u64,
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8]) -> u64 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u64::from(u32::from_be_bytes(a))
}

impl Prefix {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SDMF_PREFIX_LEN);
        out.push(self.format.version_byte());
        out.extend_from_slice(&self.seqnum.to_be_bytes());
        out.extend_from_slice(&self.root_hash);
        if let Some(iv) = &self.iv {
            out.extend_from_slice(iv);
        }
        out.push(self.k);
        out.push(self.n);
        out.extend_from_slice(&self.segment_size.to_be_bytes());
        out.extend_from_slice(&self.data_length.to_be_bytes());
        out
    }

    /// The checkstring (version, seqnum, root hash, and SDMF's IV).
    pub fn checkstring(&self) -> Vec<u8> {
        let mut s = self.signed_bytes();
        s.truncate(self.format.checkstring_len());
        s
    }

    /// Parse and check a signed prefix from the start of a share.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let Some(&version) = data.first() else {
            return Err(Error::corrupt("mutable share is empty".to_string()));
        };
        let format = match version {
            0 => MutableFormat::Sdmf,
            1 => MutableFormat::Mdmf,
            v => {
                return Err(Error::corrupt(format!(
                    "mutable share has version {v}; only 0 (SDMF) and 1 (MDMF) exist"
                )));
            }
        };
        let len = match format {
            MutableFormat::Sdmf => SDMF_PREFIX_LEN,
            MutableFormat::Mdmf => MDMF_PREFIX_LEN,
        };
        if data.len() < len {
            return Err(Error::corrupt(format!(
                "{} prefix is truncated: {} of {len} bytes",
                format.name(),
                data.len()
            )));
        }
        let mut root_hash = [0u8; 32];
        root_hash.copy_from_slice(&data[9..41]);
        let (iv, rest) = match format {
            MutableFormat::Sdmf => {
                let mut iv = [0u8; SALT_LEN];
                iv.copy_from_slice(&data[41..57]);
                (Some(iv), &data[57..len])
            }
            MutableFormat::Mdmf => (None, &data[41..len]),
        };
        let p = Prefix {
            format,
            seqnum: be_u64(&data[1..9]),
            root_hash,
            iv,
            k: rest[0],
            n: rest[1],
            segment_size: be_u64(&rest[2..10]),
            data_length: be_u64(&rest[10..18]),
        };
        p.check()?;
        Ok(p)
    }

    /// The rules Tahoe's publisher follows, which every version must obey.
    fn check(&self) -> Result<()> {
        let (k, n) = (u64::from(self.k), u64::from(self.n));
        if k == 0 || k > n {
            return Err(Error::corrupt(format!(
                "mutable share has k={k}, n={n}: needs 1 <= k <= n"
            )));
        }
        match self.format {
            MutableFormat::Sdmf => {
                if self.data_length > crate::format::ssk::MAX_SDMF_SIZE {
                    return Err(Error::corrupt(format!(
                        "SDMF file of {} bytes: more than the {} an SDMF file may hold here",
                        self.data_length,
                        crate::format::ssk::MAX_SDMF_SIZE
                    )));
                }
                if self.segment_size != self.data_length.div_ceil(k) * k {
                    return Err(Error::corrupt(format!(
                        "SDMF segment size {} is not the data length {} rounded up to k={k}",
                        self.segment_size, self.data_length
                    )));
                }
            }
            MutableFormat::Mdmf => {
                if self.segment_size > MAX_MDMF_SEGMENT_SIZE {
                    return Err(Error::corrupt(format!(
                        "MDMF segment size {} is over the {MAX_MDMF_SEGMENT_SIZE} read here",
                        self.segment_size
                    )));
                }
                if self.segment_size == 0 || !self.segment_size.is_multiple_of(k) {
                    return Err(Error::corrupt(format!(
                        "MDMF segment size {} is not a positive multiple of k={k}",
                        self.segment_size
                    )));
                }
                if self.data_length.div_ceil(self.segment_size) > MAX_SEGMENTS {
                    return Err(Error::corrupt(format!(
                        "MDMF file of {} bytes in {}-byte segments has more than {MAX_SEGMENTS} segments",
                        self.data_length, self.segment_size
                    )));
                }
            }
        }
        Ok(())
    }

    /// The segmentation these parameters give.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(
            self.format,
            u64::from(self.k),
            self.segment_size,
            self.data_length,
        )
    }
}

/// Segment and block sizes of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Shares needed.
    pub k: u64,
    /// Segment size.
    pub segment_size: u64,
    /// Plaintext length.
    pub data_length: u64,
    /// Number of segments (0 for an empty file).
    pub segments: u64,
}

impl Geometry {
    /// The segmentation of `data_length` bytes.
    pub fn new(format: MutableFormat, k: u64, segment_size: u64, data_length: u64) -> Self {
        let segments = if segment_size == 0 {
            0
        } else {
            data_length.div_ceil(segment_size)
        };
        Geometry {
            format,
            k,
            segment_size,
            data_length,
            segments,
        }
    }

    /// Plaintext bytes of segment `i`.
    pub fn segment_len(&self, i: u64) -> u64 {
        if i + 1 == self.segments {
            self.data_length - i * self.segment_size
        } else {
            self.segment_size
        }
    }

    /// Segment `i` padded to a multiple of k (what the codec encodes).
    pub fn padded_segment_len(&self, i: u64) -> u64 {
        self.segment_len(i).div_ceil(self.k) * self.k
    }

    /// Block bytes of segment `i` in each share.
    pub fn block_len(&self, i: u64) -> u64 {
        self.padded_segment_len(i) / self.k
    }

    /// Where segment `i`'s block (MDMF: its salt, then the block) starts,
    /// relative to the share data.
    pub fn block_offset(&self, i: u64) -> u64 {
        match self.format {
            MutableFormat::Sdmf => 0,
            MutableFormat::Mdmf => i * (SALT_LEN as u64 + self.segment_size / self.k),
        }
    }

    /// Bytes of share data (blocks, and MDMF's salts).
    pub fn share_data_len(&self) -> u64 {
        match (self.format, self.segments) {
            (_, 0) => 0,
            (MutableFormat::Sdmf, _) => self.block_len(0),
            (MutableFormat::Mdmf, s) => {
                self.block_offset(s - 1) + SALT_LEN as u64 + self.block_len(s - 1)
            }
        }
    }

    /// Leaves of each share's block hash tree (a tree has at least one).
    fn tree_leaves(&self) -> usize {
        self.segments.max(1) as usize
    }

    /// Bytes of each share's block hash tree (every node is stored).
    pub fn block_hash_tree_len(&self) -> u64 {
        32 * node_count(self.tree_leaves()) as u64
    }

    /// The segments that hold plaintext bytes `[start, end)`.
    pub fn segments_for(&self, start: u64, end: u64) -> std::ops::Range<u64> {
        if self.segments == 0 || start >= end {
            return 0..0;
        }
        start / self.segment_size..(end - 1) / self.segment_size + 1
    }
}

/// Where the regions of one share are (absolute byte ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsets {
    /// Verification key (SubjectPublicKeyInfo DER).
    pub verification_key: std::ops::Range<u64>,
    /// Signature of the prefix.
    pub signature: std::ops::Range<u64>,
    /// `>H32s` entries, sorted by node index.
    pub share_hash_chain: std::ops::Range<u64>,
    /// Every node of the share's block hash tree.
    pub block_hash_tree: std::ops::Range<u64>,
    /// Blocks (and MDMF salts).
    pub share_data: std::ops::Range<u64>,
    /// The private key, AES-CTR encrypted under the write key.
    pub enc_privkey: std::ops::Range<u64>,
    /// End of the share.
    pub eof: u64,
}

/// The lengths of a share's variable regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionLens {
    /// Verification key.
    pub verification_key: u64,
    /// Signature.
    pub signature: u64,
    /// Share hash chain entries.
    pub chain_entries: u64,
    /// Encrypted private key.
    pub enc_privkey: u64,
}

impl Offsets {
    /// Lay out a share of `geo` with regions of `lens`.
    pub fn compute(geo: &Geometry, lens: RegionLens) -> Result<Self> {
        let chain = lens.chain_entries * CHAIN_ENTRY_LEN as u64;
        let data = geo.share_data_len();
        let bht = geo.block_hash_tree_len();
        Ok(match geo.format {
            MutableFormat::Sdmf => {
                let vk = SDMF_HEADER_LEN as u64;
                let sig = vk + lens.verification_key;
                let ch = sig + lens.signature;
                let bt = ch + chain;
                let sd = bt + bht;
                let ep = sd + data;
                let eof = ep + lens.enc_privkey;
                Offsets {
                    verification_key: vk..sig,
                    signature: sig..ch,
                    share_hash_chain: ch..bt,
                    block_hash_tree: bt..sd,
                    share_data: sd..ep,
                    enc_privkey: ep..eof,
                    eof,
                }
            }
            MutableFormat::Mdmf => {
                let ep = MDMF_HEADER_LEN as u64;
                let ch = ep + lens.enc_privkey;
                let sig = ch + chain;
                let vk = sig + lens.signature;
                let vk_end = vk + lens.verification_key;
                if vk_end > MDMF_SHARE_DATA {
                    return Err(Error::invalid_input(format!(
                        "keys and signature take {} bytes, more than the {} MDMF reserves",
                        vk_end - ep,
                        MDMF_SHARE_DATA - ep
                    )));
                }
                let sd = MDMF_SHARE_DATA;
                let bt = sd + data;
                let eof = bt + bht;
                Offsets {
                    verification_key: vk..vk_end,
                    signature: sig..vk,
                    share_hash_chain: ch..sig,
                    block_hash_tree: bt..eof,
                    share_data: sd..bt,
                    enc_privkey: ep..ch,
                    eof,
                }
            }
        })
    }

    /// The region lengths these offsets hold.
    pub fn lens(&self) -> RegionLens {
        RegionLens {
            verification_key: len(&self.verification_key),
            signature: len(&self.signature),
            chain_entries: len(&self.share_hash_chain) / CHAIN_ENTRY_LEN as u64,
            enc_privkey: len(&self.enc_privkey),
        }
    }

    /// The offset table as the header carries it.
    pub fn encode(&self, format: MutableFormat) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match format {
            MutableFormat::Sdmf => {
                for v in [
                    self.signature.start,
                    self.share_hash_chain.start,
                    self.block_hash_tree.start,
                    self.share_data.start,
                ] {
                    out.extend_from_slice(&(v as u32).to_be_bytes());
                }
                out.extend_from_slice(&self.enc_privkey.start.to_be_bytes());
                out.extend_from_slice(&self.eof.to_be_bytes());
            }
            MutableFormat::Mdmf => {
                for v in [
                    self.enc_privkey.start,
                    self.share_hash_chain.start,
                    self.signature.start,
                    self.verification_key.start,
                    self.verification_key.end,
                    self.share_data.start,
                    self.block_hash_tree.start,
                    self.eof,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        out
    }

    /// Read and check the offset table of a share whose prefix is `p`:
    /// the table must be exactly the one [`Offsets::compute`] gives for the
    /// region lengths it implies, with lengths in sane bounds.
    pub fn parse(p: &Prefix, header: &[u8]) -> Result<Self> {
        let fmt = p.format;
        if header.len() < fmt.header_len() {
            return Err(Error::corrupt(format!(
                "{} header is truncated: {} of {} bytes",
                fmt.name(),
                header.len(),
                fmt.header_len()
            )));
        }
        let lens = match fmt {
            MutableFormat::Sdmf => {
                let t = &header[SDMF_PREFIX_LEN..SDMF_HEADER_LEN];
                let sig = be_u32(&t[0..4]);
                let chain = be_u32(&t[4..8]);
                let bht = be_u32(&t[8..12]);
                let ep = be_u64(&t[16..24]);
                let eof = be_u64(&t[24..32]);
                // bht, share data and enc_privkey starts follow from the
                // parameters; the comparison below checks them.
                span(chain, bht)?;
                RegionLens {
                    verification_key: span(SDMF_HEADER_LEN as u64, sig)?,
                    signature: span(sig, chain)?,
                    chain_entries: span(chain, bht)? / CHAIN_ENTRY_LEN as u64,
                    enc_privkey: span(ep, eof)?,
                }
            }
            MutableFormat::Mdmf => {
                let t = &header[MDMF_PREFIX_LEN..MDMF_HEADER_LEN];
                let o: Vec<u64> = (0..8).map(|i| be_u64(&t[8 * i..])).collect();
                RegionLens {
                    enc_privkey: span(o[0], o[1])?,
                    chain_entries: span(o[1], o[2])? / CHAIN_ENTRY_LEN as u64,
                    signature: span(o[2], o[3])?,
                    verification_key: span(o[3], o[4])?,
                }
            }
        };
        if lens.verification_key > MAX_KEY_REGION
            || lens.enc_privkey > MAX_KEY_REGION
            || lens.signature > MAX_SIGNATURE
            || lens.chain_entries > MAX_CHAIN_ENTRIES
        {
            return Err(Error::corrupt(format!(
                "{} share's key, signature or hash chain region is implausibly large ({lens:?})",
                fmt.name()
            )));
        }
        let expected = Offsets::compute(&p.geometry(), lens).map_err(|e| e.context("share"))?;
        let table = expected.encode(fmt);
        if table[..] != header[fmt.header_len() - table.len()..fmt.header_len()] {
            return Err(Error::corrupt(format!(
                "{} offset table does not match the share's parameters (k={}, segment size {}, {} bytes)",
                fmt.name(),
                p.k,
                p.segment_size,
                p.data_length
            )));
        }
        Ok(expected)
    }
}

fn len(r: &std::ops::Range<u64>) -> u64 {
    r.end - r.start
}

fn span(a: u64, b: u64) -> Result<u64> {
    b.checked_sub(a)
        .ok_or_else(|| Error::corrupt(format!("share offsets go backwards ({a} then {b})")))
}

/// The header bytes: prefix then offset table.
pub fn header(p: &Prefix, o: &Offsets) -> Vec<u8> {
    let mut h = p.signed_bytes();
    h.extend_from_slice(&o.encode(p.format));
    h
}

/// Serialize a share hash chain (`>H32s`, sorted by node index, as Tahoe
/// writes mutable chains).
pub fn encode_chain(chain: &[(u16, Hash)]) -> Vec<u8> {
    let mut sorted = chain.to_vec();
    sorted.sort_by_key(|(i, _)| *i);
    pack_share_hashes(&sorted)
}

/// Parse a share hash chain; node indexes must be strictly increasing.
pub fn decode_chain(bytes: &[u8]) -> Result<Vec<(u16, Hash)>> {
    let chain = parse_share_hashes(bytes)?;
    if chain.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::corrupt(
            "share hash chain is not sorted by node index".to_string(),
        ));
    }
    Ok(chain)
}

/// A share's head parsed: prefix and offsets (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHead {
    /// The signed prefix.
    pub prefix: Prefix,
    /// Where everything is.
    pub offsets: Offsets,
}

impl ShareHead {
    /// Parse the start of a share (at least the header).
    pub fn parse(data: &[u8]) -> Result<Self> {
        let prefix = Prefix::parse(data)?;
        let offsets = Offsets::parse(&prefix, data)?;
        Ok(ShareHead { prefix, offsets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(format: MutableFormat, len: u64) -> Prefix {
        let k = 3;
        Prefix {
            format,
            seqnum: 7,
            root_hash: [9; 32],
            iv: (format == MutableFormat::Sdmf).then_some([5; 16]),
            k: k as u8,
            n: 10,
            segment_size: match format {
                MutableFormat::Sdmf => len.div_ceil(k) * k,
                MutableFormat::Mdmf => 131073,
            },
            data_length: len,
        }
    }

    #[test]
    fn headers_round_trip_and_lie_nowhere() {
        let lens = RegionLens {
            verification_key: 294,
            signature: 256,
            chain_entries: 4,
            enc_privkey: 1218,
        };
        for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
            for len in [0u64, 1, 56, 131073, 300000] {
                if format == MutableFormat::Sdmf && len > 200_000 {
                    continue;
                }
                let p = prefix(format, len);
                let o = Offsets::compute(&p.geometry(), lens).expect("layout");
                let h = header(&p, &o);
                assert_eq!(h.len(), format.header_len());
                let head = ShareHead::parse(&h).expect("parses");
                assert_eq!(head.prefix, p);
                assert_eq!(head.offsets, o);
                // Every truncation is refused. A changed offset table is
                // refused unless it is another consistent layout (other
                // key or signature lengths, which their own checks catch):
                // never one with regions out of place.
                for cut in 0..h.len() {
                    assert!(ShareHead::parse(&h[..cut]).is_err());
                }
                for i in p.signed_bytes().len()..h.len() {
                    let mut bad = h.clone();
                    bad[i] ^= 0x40;
                    if let Ok(other) = ShareHead::parse(&bad) {
                        assert_ne!(other.offsets, o, "{format:?} byte {i}");
                        let again = Offsets::compute(&p.geometry(), other.offsets.lens());
                        assert_eq!(again.unwrap(), other.offsets, "{format:?} byte {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        let mut p = prefix(MutableFormat::Sdmf, 56);
        p.k = 0;
        assert!(Prefix::parse(&p.signed_bytes()).is_err());
        let mut p = prefix(MutableFormat::Sdmf, 56);
        p.segment_size = 56;
        assert!(Prefix::parse(&p.signed_bytes()).is_err());
        let mut p = prefix(MutableFormat::Mdmf, 56);
        p.segment_size = 131072;
        assert!(Prefix::parse(&p.signed_bytes()).is_err());
        // Lengths near 2^64 (found by the fuzzer: the SDMF rounding
        // overflowed) and absurd segment sizes are refused, not computed.
        for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
            let mut p = prefix(format, 56);
            p.data_length = u64::MAX - 2;
            assert!(Prefix::parse(&p.signed_bytes()).is_err());
        }
        let mut p = prefix(MutableFormat::Mdmf, 56);
        p.segment_size = (1 << 40) * 3;
        assert!(Prefix::parse(&p.signed_bytes()).is_err());
        let mut b = prefix(MutableFormat::Mdmf, 56).signed_bytes();
        b[0] = 2;
        assert!(Prefix::parse(&b).is_err());
        assert!(decode_chain(&[0; 33]).is_err());
        let mut chain = encode_chain(&[(2, [1; 32]), (4, [2; 32])]);
        chain.swap(1, 35);
        assert!(decode_chain(&chain).is_err());
    }
}
