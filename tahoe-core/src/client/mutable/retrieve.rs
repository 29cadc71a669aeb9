//! Reading one version of a mutable file, every hash checked.
//!
//! For the version the [`ServerMap`] picked, k shares are chosen (distinct
//! share numbers, on distinct servers where possible). Before any of its
//! blocks is used, a share's block hash tree is read and checked: the
//! stored tree must be exactly the tree of its own leaves, and its root
//! must hash up the share's hash chain to the signed root hash. Each block
//! (MDMF: salt and block) must then hash to its leaf. A share that fails
//! any check, or whose server fails, is dropped for another; the read
//! fails only when fewer than k good shares remain.
//!
//! Only the segments that hold the requested range are fetched, a few at
//! a time and in order, so memory stays at a few segments (plus one block
//! hash tree per share in use: 32 bytes per segment per tree).

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::future::join_all;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::mutable::servermap::{ServerMap, ShareEntry};
use crate::client::servers::BadShare;
use crate::error::{Error, ErrorKind, Result};
use crate::format::hash::Hash;
use crate::format::hashtree::parse_hash_nodes;
use crate::format::hashtree::{check_interior_nodes, empty_leaf_hash, verify_leaf};
use crate::format::ssk::MUTABLE_CODEC;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::encode::block_leaves;
use crate::format::ssk::keys::{apply_ctr, data_key};
use crate::format::ssk::layout::{Geometry, Prefix, SALT_LEN, decode_chain};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::CodecProvider;
use crate::kinds::codec::{Block, Codec, CodecParams};
use crate::kinds::storage::{ShareNum, StorageIndex};
use crate::protocol::StorageService;

/// Groups of segments fetched and decoded at once.
const WINDOW: usize = 3;

/// About this much plaintext is fetched per share read (consecutive
/// segments' blocks are adjacent in a share, so a group is one range).
const GROUP_BYTES: u64 = 1 << 20;

/// Segments per group for a version.
fn group_len(geo: &Geometry) -> u64 {
    (GROUP_BYTES / geo.segment_size.max(1)).max(1)
}

/// `segs` cut into runs of at most `len`.
fn groups(segs: Range<u64>, len: u64) -> impl Iterator<Item = Range<u64>> {
    let end = segs.end;
    segs.step_by(len as usize)
        .map(move |s| s..(s + len).min(end))
}

/// The most bytes one read call asks for (well inside a call's budget).
const READ_CHUNK: u64 = 4 << 20;

/// What a read saw besides the data.
#[derive(Debug, Clone)]
pub struct ReadReport {
    /// The version read.
    pub prefix: Prefix,
    /// Shares dropped, with the reason.
    pub bad_shares: Vec<BadShare>,
    /// Bytes written out.
    pub bytes: u64,
}

/// Reads mutable files.
#[derive(Clone)]
pub struct Retriever {
    /// Builds the codec for a version's k and n (must be zfec's, `crs`).
    pub codecs: Arc<CodecProvider>,
    /// AES-128-CTR.
    pub cipher: Arc<dyn Cipher>,
}

/// Counts the bytes written through it.
pub(crate) struct Counting<'a> {
    pub(crate) inner: &'a mut (dyn AsyncWrite + Unpin + Send),
    pub(crate) written: u64,
}

impl AsyncWrite for Counting<'_> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = r {
            self.written += n as u64;
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// One share being read from.
struct Source {
    entry: ShareEntry,
    service: Arc<dyn StorageService>,
    server_id: String,
    /// The verified block hash tree, once fetched.
    tree: tokio::sync::OnceCell<Vec<Hash>>,
}

/// The shares of the version and which are still good.
struct Shares {
    si: StorageIndex,
    prefix: Prefix,
    geo: Geometry,
    sources: Vec<Arc<Source>>,
    state: Mutex<SharesState>,
}

struct SharesState {
    bad: BTreeSet<usize>,
    report: Vec<BadShare>,
}

impl Shares {
    fn new(map: &ServerMap, prefix: &Prefix, entries: &[ShareEntry]) -> Shares {
        Shares {
            si: map.storage_index,
            prefix: prefix.clone(),
            geo: prefix.geometry(),
            sources: entries
                .iter()
                .map(|e| {
                    Arc::new(Source {
                        entry: e.clone(),
                        service: map.service(e.server),
                        server_id: map.servers[e.server].id.clone(),
                        tree: tokio::sync::OnceCell::new(),
                    })
                })
                .collect(),
            state: Mutex::new(SharesState {
                bad: BTreeSet::new(),
                report: Vec::new(),
            }),
        }
    }

    /// Pick k good sources with distinct share numbers, preferring
    /// servers not yet used.
    fn pick(&self) -> Result<Vec<usize>> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let k = usize::from(self.prefix.k);
        let mut chosen: Vec<usize> = Vec::new();
        let mut shnums = BTreeSet::new();
        let mut servers = BTreeSet::new();
        for pass in 0..2 {
            for (i, s) in self.sources.iter().enumerate() {
                if chosen.len() == k {
                    break;
                }
                if st.bad.contains(&i) || shnums.contains(&s.entry.shnum) {
                    continue;
                }
                if pass == 0 && servers.contains(&s.entry.server) {
                    continue;
                }
                shnums.insert(s.entry.shnum);
                servers.insert(s.entry.server);
                chosen.push(i);
            }
        }
        if chosen.len() < k {
            return Err(Error::not_enough_shares(format!(
                "version {} has {} good share(s) left, {k} needed: {}",
                self.prefix.seqnum,
                chosen.len(),
                st.report
                    .iter()
                    .map(|b| format!("share {} on {}: {}", b.shnum, b.server, b.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok(chosen)
    }

    fn drop_source(&self, i: usize, err: &Error) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.bad.insert(i) {
            let s = &self.sources[i];
            st.report.push(BadShare {
                server: s.server_id.clone(),
                shnum: s.entry.shnum,
                reason: err.message().to_string(),
                corrupt: err.kind() == ErrorKind::Corrupt,
            });
        }
    }

    /// Read `ranges` of source `i`'s share; each must come back whole.
    /// Ranges too large for one call (an SDMF block of a large file) are
    /// read in pieces.
    async fn read(&self, i: usize, ranges: Vec<(u64, u64)>) -> Result<Vec<bytes::Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.1).sum();
        if total > READ_CHUNK {
            let mut out = Vec::with_capacity(ranges.len());
            for (offset, len) in ranges {
                let mut buf = Vec::with_capacity(len as usize);
                let mut at = 0;
                while at < len {
                    let n = (len - at).min(READ_CHUNK);
                    let piece = self.read_call(i, vec![(offset + at, n)]).await?;
                    buf.extend_from_slice(&piece[0]);
                    at += n;
                }
                out.push(bytes::Bytes::from(buf));
            }
            return Ok(out);
        }
        self.read_call(i, ranges).await
    }

    async fn read_call(&self, i: usize, ranges: Vec<(u64, u64)>) -> Result<Vec<bytes::Bytes>> {
        let s = &self.sources[i];
        let mut got = s
            .service
            .slot_readv(self.si, vec![s.entry.shnum], ranges.clone())
            .await?;
        let data = got.remove(&s.entry.shnum).ok_or_else(|| {
            Error::corrupt(format!("server no longer has share {}", s.entry.shnum))
        })?;
        if data.len() != ranges.len()
            || data.iter().zip(&ranges).any(|(d, r)| d.len() as u64 != r.1)
        {
            return Err(Error::corrupt(format!(
                "share {} is shorter than its offsets say",
                s.entry.shnum
            )));
        }
        Ok(data)
    }

    /// Source `i`'s block hash tree, fetched and checked once.
    async fn tree(&self, i: usize) -> Result<Vec<Hash>> {
        let s = self.sources[i].clone();
        s.tree
            .get_or_try_init(|| async {
                let o = &s.entry.head.offsets;
                let have = s.entry.data.len() as u64;
                let bytes_of =
                    |r: &Range<u64>| s.entry.data.slice(r.start as usize..r.end as usize);
                let mut want = Vec::new();
                for r in [&o.share_hash_chain, &o.block_hash_tree] {
                    if r.end > have {
                        want.push((r.start, r.end - r.start));
                    }
                }
                let mut fetched = self.read(i, want).await?.into_iter();
                let mut region = |r: &Range<u64>| {
                    if r.end > have {
                        fetched.next().unwrap_or_default()
                    } else {
                        bytes_of(r)
                    }
                };
                let chain = decode_chain(&region(&o.share_hash_chain))?;
                let count = (self.geo.block_hash_tree_len() / 32) as usize;
                let nodes = parse_hash_nodes(&region(&o.block_hash_tree), count)?;
                check_block_tree(&self.geo, &nodes)?;
                verify_leaf(
                    &self.prefix.root_hash,
                    usize::from(self.prefix.n),
                    usize::from(s.entry.shnum),
                    &nodes[0],
                    |idx| {
                        chain
                            .iter()
                            .find(|(j, _)| usize::from(*j) == idx)
                            .map(|(_, h)| *h)
                    },
                )
                .map_err(|e| e.context("share hash chain does not reach the signed root"))?;
                Ok(nodes)
            })
            .await
            .cloned()
    }

    /// Fetch the blocks of consecutive segments `segs` from source `i` in
    /// one read (they are adjacent in the share), each checked against its
    /// leaf: (salt, block) per segment.
    async fn blocks(&self, i: usize, segs: Range<u64>) -> Result<Vec<([u8; SALT_LEN], Vec<u8>)>> {
        let tree = self.tree(i).await?;
        let geo = &self.geo;
        let s = &self.sources[i];
        let salted = geo.format == MutableFormat::Mdmf;
        let extra = if salted { SALT_LEN as u64 } else { 0 };
        let base = s.entry.head.offsets.share_data.start;
        let at = base + geo.block_offset(segs.start);
        let last = segs.end - 1;
        let end = base + geo.block_offset(last) + extra + geo.block_len(last);
        // Small shares came whole with the servermap's first read: no
        // second round trip (and the same bytes the map verified).
        let data = if end <= s.entry.data.len() as u64 {
            s.entry.data.slice(at as usize..end as usize)
        } else {
            self.read(i, vec![(at, end - at)]).await?.remove(0)
        };
        let first_leaf = tree.len() / 2;
        let mut out = Vec::with_capacity((segs.end - segs.start) as usize);
        for seg in segs {
            let from = (base + geo.block_offset(seg) - at) as usize;
            let piece = &data[from..from + (extra + geo.block_len(seg)) as usize];
            let (salt, block) = if salted {
                let mut salt = [0u8; SALT_LEN];
                salt.copy_from_slice(&piece[..SALT_LEN]);
                (salt, piece[SALT_LEN..].to_vec())
            } else {
                (self.prefix.iv.unwrap_or_default(), piece.to_vec())
            };
            let blocks = [block];
            if tree[first_leaf + seg as usize] != block_leaves(geo.format, &salt, &blocks)[0] {
                return Err(Error::corrupt(format!(
                    "block {seg} of share {} does not match its hash",
                    s.entry.shnum
                )));
            }
            let [block] = blocks;
            out.push((salt, block));
        }
        Ok(out)
    }
}

/// Read share `entry` of version `prefix` whole and check every hash in
/// it: its block hash tree against its leaves and, through its share hash
/// chain, against the signed root hash (the servermap checked the
/// signature); then each block (MDMF: salt and block) against its leaf.
/// Needs no read key: a verify cap is enough. `Corrupt` when a check
/// fails; the server's own error when it does not answer.
pub(crate) async fn verify_share(
    map: &ServerMap,
    prefix: &Prefix,
    entry: &ShareEntry,
) -> Result<()> {
    let shares = Shares::new(map, prefix, std::slice::from_ref(entry));
    shares.tree(0).await?;
    for segs in groups(0..shares.geo.segments, group_len(&shares.geo)) {
        shares.blocks(0, segs).await?;
    }
    Ok(())
}

/// A stored block hash tree must be the complete tree of its own leaves,
/// padded as Tahoe pads: anything else is corrupt.
fn check_block_tree(geo: &Geometry, nodes: &[Hash]) -> Result<()> {
    let first_leaf = nodes.len() / 2;
    for i in geo.segments as usize..nodes.len() - first_leaf {
        if nodes[first_leaf + i] != empty_leaf_hash(i) {
            return Err(Error::corrupt(format!(
                "block hash tree padding leaf {i} is not Tahoe's empty leaf"
            )));
        }
    }
    check_interior_nodes(nodes)
}

impl Retriever {
    /// The codec for a version.
    pub fn codec(&self, prefix: &Prefix) -> Result<Arc<dyn Codec>> {
        (self.codecs)(
            MUTABLE_CODEC,
            CodecParams::new(u16::from(prefix.k), u16::from(prefix.n))?,
        )
    }

    /// Write bytes `range` (clamped to the file) of the newest version in
    /// `map` to `out`. `read_key` must be the cap's.
    pub async fn read(
        &self,
        map: &ServerMap,
        read_key: &[u8; 16],
        range: Range<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ReadReport> {
        let candidates = map.candidates()?;
        if candidates.is_empty() {
            return Err(Error::not_found(format!(
                "no server holds a share of mutable file {} ({} of {} servers answered)",
                map.storage_index,
                map.answered,
                map.servers.len()
            )));
        }
        let mut skipped: Vec<BadShare> = Vec::new();
        let mut last = None;
        for (prefix, entries) in candidates {
            // Count what reaches `out`: once anything has, a failure can no
            // longer fall back to an older version.
            let mut counting = Counting {
                inner: &mut *out,
                written: 0,
            };
            match self
                .read_version(map, prefix, entries, read_key, range.clone(), &mut counting)
                .await
            {
                Ok(mut report) => {
                    report.bad_shares.extend(skipped);
                    report.bad_shares.extend(map.bad_shares());
                    return Ok(report);
                }
                Err(e) if counting.written == 0 && e.kind() == ErrorKind::NotEnoughShares => {
                    tracing::warn!(
                        "version {} of {} could not be read ({e}); trying an older one",
                        prefix.seqnum,
                        map.storage_index
                    );
                    skipped.push(BadShare {
                        server: String::new(),
                        shnum: 0,
                        reason: format!("version {} undeliverable: {}", prefix.seqnum, e.message()),
                        corrupt: true,
                    });
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::internal("no version was tried".to_string())))
    }

    /// Read `range` of one version given its verified share entries.
    async fn read_version(
        &self,
        map: &ServerMap,
        prefix: &Prefix,
        entries: &[ShareEntry],
        read_key: &[u8; 16],
        range: Range<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ReadReport> {
        let shares = self.shares(map, prefix, entries);
        let start = range.start.min(prefix.data_length);
        let end = range.end.min(prefix.data_length).max(start);
        let codec = self.codec(prefix)?;
        let geo = shares.geo;
        let mut stream =
            futures::stream::iter(groups(geo.segments_for(start, end), group_len(&geo)))
                .map(|segs| {
                    let shares = &shares;
                    let codec = codec.clone();
                    async move { self.segments_group(shares, codec, read_key, segs).await }
                })
                .buffered(WINDOW);
        let mut written = 0u64;
        while let Some(item) = stream.next().await {
            for (seg, plain) in item? {
                let seg_start = seg * geo.segment_size;
                let from = start.saturating_sub(seg_start) as usize;
                let to = ((end - seg_start) as usize).min(plain.len());
                out.write_all(&plain[from..to])
                    .await
                    .map_err(|e| Error::new(ErrorKind::Io, format!("writing the file out: {e}")))?;
                written += (to - from) as u64;
            }
        }
        drop(stream);
        let st = shares.state.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(ReadReport {
            prefix: prefix.clone(),
            bad_shares: st.report,
            bytes: written,
        })
    }

    /// Decrypted plaintext of whole segments `segs` of a version (used by
    /// writes at an offset, which re-encode the segments they touch).
    pub async fn segments(
        &self,
        map: &ServerMap,
        prefix: &Prefix,
        entries: &[ShareEntry],
        read_key: &[u8; 16],
        segs: Range<u64>,
    ) -> Result<Vec<Vec<u8>>> {
        let shares = self.shares(map, prefix, entries);
        let codec = self.codec(prefix)?;
        let mut out = Vec::new();
        for group in groups(segs, group_len(&shares.geo)) {
            for (_, plain) in self
                .segments_group(&shares, codec.clone(), read_key, group)
                .await?
            {
                out.push(plain);
            }
        }
        Ok(out)
    }

    /// Every share's verified block hash tree (for writes at an offset,
    /// which must recompute each tree's root).
    pub async fn block_trees(
        &self,
        map: &ServerMap,
        prefix: &Prefix,
        entries: &[ShareEntry],
    ) -> Result<Vec<(ShareNum, Vec<Hash>)>> {
        let shares = self.shares(map, prefix, entries);
        let trees = join_all((0..shares.sources.len()).map(|i| shares.tree(i))).await;
        let mut out = Vec::new();
        for (i, t) in trees.into_iter().enumerate() {
            match t {
                Ok(t) => out.push((shares.sources[i].entry.shnum, t)),
                Err(e) => shares.drop_source(i, &e),
            }
        }
        Ok(out)
    }

    fn shares(&self, map: &ServerMap, prefix: &Prefix, entries: &[ShareEntry]) -> Shares {
        Shares::new(map, prefix, entries)
    }

    /// Fetch, check, decode and decrypt consecutive segments `segs`: one
    /// read per share for the whole group.
    async fn segments_group(
        &self,
        shares: &Shares,
        codec: Arc<dyn Codec>,
        read_key: &[u8; 16],
        segs: Range<u64>,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        loop {
            let chosen = shares.pick()?;
            let got = join_all(chosen.iter().map(|&i| shares.blocks(i, segs.clone()))).await;
            let mut per_share = Vec::with_capacity(chosen.len());
            let mut failed = false;
            for (&i, r) in chosen.iter().zip(got) {
                match r {
                    Ok(b) => per_share.push((usize::from(shares.sources[i].entry.shnum), b)),
                    Err(e) => {
                        shares.drop_source(i, &e);
                        failed = true;
                    }
                }
            }
            if failed {
                continue;
            }
            let geo = shares.geo;
            let cipher = self.cipher.clone();
            let key = *read_key;
            let segs = segs.clone();
            return tokio::task::spawn_blocking(move || -> Result<Vec<(u64, Vec<u8>)>> {
                let mut out = Vec::with_capacity((segs.end - segs.start) as usize);
                for (j, seg) in segs.enumerate() {
                    let refs: Vec<Block<'_>> = per_share
                        .iter()
                        .map(|(i, blocks)| Block {
                            index: *i,
                            data: &blocks[j].1,
                        })
                        .collect();
                    let mut plain = codec.decode(&refs, geo.padded_segment_len(seg) as usize)?;
                    plain.truncate(geo.segment_len(seg) as usize);
                    let salt = per_share[0].1[j].0;
                    apply_ctr(cipher.as_ref(), &data_key(&salt, &key), &mut plain)?;
                    out.push((seg, plain));
                }
                Ok(out)
            })
            .await
            .map_err(|e| Error::internal(format!("decode task: {e}")))?;
        }
    }
}
