//! The download pipeline.
//!
//! 1. Ask every server which shares of the storage index it holds.
//! 2. Fetch a URI extension block and keep the first whose hash equals the
//!    cap's: from then on the UEB is trusted, and with it the roots of the
//!    ciphertext hash tree and of the share hash tree.
//! 3. Open k shares, primary ones (share number < k) first since decoding
//!    from them is a copy: each share's block hash tree must be internally
//!    consistent and its root must hash up, through the share's hash chain,
//!    to the UEB's share root.
//! 4. For each segment wanted, fetch the k blocks at once, decode, check
//!    the ciphertext against the ciphertext tree, decrypt, write; only when
//!    that check fails are the blocks checked against their shares' trees,
//!    to find the share to blame. Several segments are in flight so
//!    network waits and CPU work overlap.
//!
//! A share that fails any check is dropped, reported (server and share
//! number) and replaced by another; a server that fails to answer is
//! replaced the same way but not reported as corrupt. No byte is written
//! out before the ciphertext it came from has been verified.

use crate::client::servers::BadShare;
use crate::kinds::codec::CodecProvider;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::client::servers::ServerRef;
use crate::error::{Error, ErrorKind, Result};
use crate::format::cap::{ChkCap, ChkVerifierCap};
use crate::format::chk::layout::{ShareLayout, V2_HEADER, parse_ueb_len};
use crate::format::chk::plan::SharePlan;
use crate::format::chk::ueb::Ueb;
use crate::format::hash::{HASH_LEN, Hash, block_hashes, tagged_hash, tags};
use crate::format::hashtree::{check_interior_nodes, node_count, verify_leaf};
use crate::format::hashtree::{parse_hash_nodes, parse_share_hashes};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::{Block, Codec};
use crate::kinds::storage::{ShareNum, StorageIndex};
use crate::protocol::{StorageService, read_bucket_chunked};

/// What a download has verified before its first byte, for a repair that
/// encodes the file again: the UEB (checked against the cap) and each
/// segment's ciphertext hash (the leaves of the tree whose root is the
/// UEB's). Every segment the download writes has been checked against its
/// hash, so the re-encoding need not hash the ciphertext again.
#[derive(Debug, Clone)]
pub struct VerifiedLayout {
    /// The file's UEB.
    pub ueb: Ueb,
    /// `segment_hashes[i]`: segment `i`'s ciphertext hash.
    pub segment_hashes: Vec<Hash>,
}

/// What a download saw besides the data.
#[derive(Debug, Clone, Default)]
pub struct DownloadReport {
    /// Shares dropped, with the reason.
    pub bad_shares: Vec<BadShare>,
    /// Bytes written out.
    pub bytes: u64,
}

/// Downloads immutable files.
#[derive(Clone)]
pub struct Downloader {
    /// Codecs by name (the UEB says which).
    pub codecs: Arc<CodecProvider>,
    /// The cipher (Tahoe's AES-128-CTR for CHK files).
    pub cipher: Arc<dyn Cipher>,
}

/// A share some server listed.
#[derive(Clone)]
pub(super) struct Candidate {
    pub(super) shnum: ShareNum,
    pub(super) server: ServerRef,
    pub(super) size: u64,
    /// The whole share, when it was small enough to read at once.
    pub(super) head: Option<Bytes>,
}

/// An opened, verified share.
pub(super) struct OpenShare {
    cand: Candidate,
    pub(super) layout: ShareLayout,
    /// The verified block hash tree, all nodes.
    pub(super) block_tree: Vec<Hash>,
}

/// What opening shares of one file needs: its verified UEB, plan and
/// ciphertext hash tree.
pub(super) struct Context {
    pub(super) si: StorageIndex,
    pub(super) ueb: Ueb,
    pub(super) plan: SharePlan,
    pub(super) codec: Arc<dyn Codec>,
    pub(super) crypttext_tree: Vec<Hash>,
}

struct ShareSet {
    active: Vec<Arc<OpenShare>>,
    spare: VecDeque<Candidate>,
    bad: Vec<BadShare>,
}

/// Shares of at most this many bytes are read whole, in one call, as soon
/// as they are found (k of them at once): a small file then costs one
/// round trip after the listing instead of one per header, hash tree and
/// block. Shares of small files hold little more than their one block.
const READ_WHOLE: u64 = 512 << 10;

/// The URI extension block sits at the end of a share, after its length
/// field: when that tail is at most this long it is read in one call.
const UEB_TAIL: u64 = 64 << 10;

/// Reads one share: from `head` (bytes from its start already fetched)
/// when they cover the range, else from the server.
pub(crate) struct ShareReader<'a> {
    pub service: &'a dyn StorageService,
    pub si: StorageIndex,
    pub shnum: ShareNum,
    /// The share's size, as the server listed it.
    pub size: u64,
    pub head: Option<&'a Bytes>,
}

impl ShareReader<'_> {
    /// Up to `len` bytes at `offset` (fewer at the share's end).
    async fn read(&self, offset: u64, len: u64) -> Result<Bytes> {
        if let Some(head) = self.head {
            let end = offset.saturating_add(len).min(self.size);
            if end <= head.len() as u64 {
                let start = offset.min(end);
                return Ok(head.slice(start as usize..end as usize));
            }
        }
        read_bucket_chunked(self.service, self.si, self.shnum, offset, len).await
    }

    /// Exactly `len` bytes at `offset`.
    async fn read_exact(&self, offset: u64, len: u64) -> Result<Bytes> {
        let data = self.read(offset, len).await?;
        if data.len() as u64 != len {
            return Err(Error::corrupt(format!(
                "share is short: {} bytes at offset {offset}, wanted {len}",
                data.len()
            )));
        }
        Ok(data)
    }

    async fn layout(&self) -> Result<ShareLayout> {
        let header = self.read(0, V2_HEADER).await?;
        ShareLayout::parse(&header, self.size)
    }

    /// The share's packed URI extension block, unverified, with its
    /// layout.
    pub(crate) async fn packed_ueb(&self) -> Result<(Bytes, ShareLayout)> {
        let layout = self.layout().await?;
        let field_end = layout
            .uri_extension
            .checked_add(layout.field_size())
            .ok_or_else(|| Error::corrupt("UEB offset overflows"))?;
        let tail_len = self.size.saturating_sub(layout.uri_extension);
        if tail_len <= UEB_TAIL && field_end <= self.size {
            // Length field and block in one call.
            let tail = self.read_exact(layout.uri_extension, tail_len).await?;
            let fs = layout.field_size() as usize;
            let len = parse_ueb_len(&layout, &tail[..fs], self.size)?;
            let end = (fs as u64)
                .checked_add(len)
                .filter(|&e| e <= tail_len)
                .ok_or_else(|| Error::corrupt("URI extension block runs past the share"))?;
            return Ok((tail.slice(fs..end as usize), layout));
        }
        let field = self
            .read_exact(layout.uri_extension, layout.field_size())
            .await?;
        let len = parse_ueb_len(&layout, &field, self.size)?;
        let bytes = self.read_exact(field_end, len).await?;
        Ok((bytes, layout))
    }
}

impl Candidate {
    fn reader(&self, si: StorageIndex) -> ShareReader<'_> {
        ShareReader {
            service: self.server.service.as_ref(),
            si,
            shnum: self.shnum,
            size: self.size,
            head: self.head.as_ref(),
        }
    }
}

pub(super) async fn read_exact(
    c: &Candidate,
    si: StorageIndex,
    offset: u64,
    len: u64,
) -> Result<Bytes> {
    c.reader(si).read_exact(offset, len).await
}

pub(super) async fn read_layout(c: &Candidate, si: StorageIndex) -> Result<ShareLayout> {
    c.reader(si).layout().await
}

/// Read the first k distinct small shares whole, at once (`READ_WHOLE`).
/// A share that fails here is left to be read (and found bad) later.
async fn read_small_shares(si: StorageIndex, candidates: &mut [Candidate], k: u16) {
    let mut seen = std::collections::HashSet::new();
    let picked: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].size <= READ_WHOLE && seen.insert(candidates[i].shnum))
        .take(usize::from(k))
        .collect();
    let reads = picked.iter().map(|&i| {
        let c = &candidates[i];
        async move { c.reader(si).read_exact(0, c.size).await.ok() }
    });
    let heads = join_all(reads).await;
    for (i, head) in picked.into_iter().zip(heads) {
        candidates[i].head = head;
    }
}

impl Downloader {
    /// Write the bytes of `range` (clamped to the file) of the file `cap`
    /// names to `out`, fetching shares from `servers`.
    pub async fn download(
        &self,
        cap: &ChkCap,
        servers: &[ServerRef],
        range: Range<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<DownloadReport> {
        crate::format::chk::check_chk_cipher(self.cipher.as_ref())?;
        let (report, _) = self
            .fetch(&cap.verifier(), Some(cap.key), servers, range, out, None)
            .await?;
        Ok(report)
    }

    /// Write the whole file's ciphertext, verified against its ciphertext
    /// hash tree but never decrypted, to `out`: what a repairer holding the
    /// verify cap alone re-encodes. The file's UEB (checked against the
    /// cap) goes to `ueb_ready` as soon as it is known, before the first
    /// byte, so that the re-encoding starts while the download goes on.
    pub async fn stream_ciphertext(
        &self,
        cap: &ChkVerifierCap,
        servers: &[ServerRef],
        out: &mut (dyn AsyncWrite + Unpin + Send),
        ueb_ready: tokio::sync::oneshot::Sender<VerifiedLayout>,
    ) -> Result<DownloadReport> {
        let (report, _) = self
            .fetch(cap, None, servers, 0..u64::MAX, out, Some(ueb_ready))
            .await?;
        Ok(report)
    }

    /// [`Self::download`], decrypting with `key` when there is one; the
    /// report and the file's UEB.
    async fn fetch(
        &self,
        cap: &ChkVerifierCap,
        key: Option<[u8; 16]>,
        servers: &[ServerRef],
        range: Range<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        ueb_ready: Option<tokio::sync::oneshot::Sender<VerifiedLayout>>,
    ) -> Result<(DownloadReport, Ueb)> {
        let si = cap.storage_index;
        let end = range.end.min(cap.size);
        if range.start > cap.size || range.start > end {
            return Err(Error::invalid_input(format!(
                "range {}..{} is outside a file of {} bytes",
                range.start, range.end, cap.size
            )));
        }
        let mut candidates = locate(si, servers, cap.k).await;
        read_small_shares(si, &mut candidates, cap.k).await;
        let total_found = candidates.len();
        let mut bad = Vec::new();
        let ctx = match self.context(cap, si, &mut candidates, &mut bad).await {
            Ok(ctx) => Arc::new(ctx),
            Err(e) => {
                // Servers hear of the bad shares found even when the
                // download cannot finish.
                advise(si, &bad, servers);
                return Err(if e.kind() == ErrorKind::NotEnoughShares {
                    e.context(format!(
                        "{total_found} shares found on {} servers",
                        servers.len()
                    ))
                } else {
                    e
                });
            }
        };
        if let Some(tx) = ueb_ready {
            // Nobody waiting is no reason to stop.
            let first = ctx.crypttext_tree.len() / 2;
            let _ = tx.send(VerifiedLayout {
                ueb: ctx.ueb.clone(),
                segment_hashes: ctx.crypttext_tree
                    [first..first + ctx.plan.seg.num_segments as usize]
                    .to_vec(),
            });
        }
        let set = Arc::new(Mutex::new(ShareSet {
            active: Vec::new(),
            spare: candidates.into(),
            bad,
        }));
        let result = self.stream(key, &ctx, &set, range.start, end, out).await;
        let bad = set.lock().await.bad.clone();
        advise(si, &bad, servers);
        let bytes = result?;
        Ok((
            DownloadReport {
                bad_shares: bad,
                bytes,
            },
            ctx.ueb.clone(),
        ))
    }

    /// Fetch, check, decode and write the segments covering `start..end`;
    /// returns the bytes written.
    async fn stream(
        &self,
        key: Option<[u8; 16]>,
        ctx: &Arc<Context>,
        set: &Arc<Mutex<ShareSet>>,
        start: u64,
        end: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64> {
        fill(ctx, set).await?;
        let mut written = 0;
        let range = start..end;
        if end > range.start {
            let seg_size = ctx.plan.seg.segment_size;
            let first = range.start / seg_size;
            let last = (end - 1) / seg_size;
            let window = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                + 2;
            let mut inflight = VecDeque::new();
            let mut next = first;
            while next <= last || !inflight.is_empty() {
                while next <= last && inflight.len() < window {
                    let (ctx, set, cipher) = (ctx.clone(), set.clone(), self.cipher.clone());
                    inflight.push_back(tokio::spawn(async move {
                        fetch_segment(&ctx, &set, cipher, key, next).await
                    }));
                    next += 1;
                }
                let Some(task) = inflight.pop_front() else {
                    break;
                };
                let (seg, plain) = match task.await {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        for t in inflight {
                            t.abort();
                        }
                        return Err(e);
                    }
                    Err(e) => return Err(Error::internal(format!("download task failed: {e}"))),
                };
                let seg_start = seg * seg_size;
                let from = range.start.max(seg_start) - seg_start;
                let to = end.min(seg_start + plain.len() as u64) - seg_start;
                out.write_all(&plain[from as usize..to as usize])
                    .await
                    .map_err(|e| Error::from(e).context("writing the downloaded file"))?;
                written += to - from;
            }
            out.flush().await.map_err(Error::from)?;
        }
        Ok(written)
    }

    /// Find a UEB matching the cap, build the codec and the plan, and fetch
    /// a verified ciphertext hash tree.
    async fn context(
        &self,
        cap: &ChkVerifierCap,
        si: StorageIndex,
        candidates: &mut Vec<Candidate>,
        bad: &mut Vec<BadShare>,
    ) -> Result<Context> {
        let mut found: Option<(Ueb, ShareLayout, Candidate)> = None;
        let mut tried = std::collections::HashSet::new();
        for c in candidates.iter() {
            // One UEB per server is enough to try; a bad one is reported.
            if !tried.insert((c.server.id.clone(), c.shnum)) {
                continue;
            }
            match fetch_ueb(c, si, cap).await {
                Ok((ueb, layout)) => {
                    found = Some((ueb, layout, c.clone()));
                    break;
                }
                Err(e) => bad.push(bad_share(c, &e)),
            }
        }
        let (ueb, layout, ueb_share) = found.ok_or_else(|| {
            Error::not_enough_shares("no share with a URI extension block matching the cap")
        })?;
        // Shares found bad so far are not used again.
        drop_bad(candidates, bad);
        let params = ueb.codec_params()?;
        let codec =
            (self.codecs)(&ueb.codec_name, params).map_err(|e| e.context("the file's codec"))?;
        let plan = SharePlan::from_segmentation(ueb.segmentation(), codec.as_ref())?;
        // The ciphertext tree is the same in every share; try the UEB's
        // share first, then the others.
        let mut order: Vec<Candidate> = vec![ueb_share.clone()];
        order.extend(
            candidates
                .iter()
                .filter(|c| c.shnum != ueb_share.shnum || c.server.id != ueb_share.server.id)
                .cloned(),
        );
        for c in order {
            let layout = if c.shnum == ueb_share.shnum && c.server.id == ueb_share.server.id {
                layout
            } else {
                match read_layout(&c, si).await {
                    Ok(l) => l,
                    Err(e) => {
                        bad.push(bad_share(&c, &e));
                        continue;
                    }
                }
            };
            match crypttext_tree(&c, si, &layout, &plan, &ueb).await {
                Ok(crypttext_tree) => {
                    drop_bad(candidates, bad);
                    return Ok(Context {
                        si,
                        ueb,
                        plan,
                        codec,
                        crypttext_tree,
                    });
                }
                Err(e) => bad.push(bad_share(&c, &e)),
            }
        }
        Err(Error::not_enough_shares(
            "no share with a valid ciphertext hash tree",
        ))
    }
}

/// Forget candidates already found bad.
fn drop_bad(candidates: &mut Vec<Candidate>, bad: &[BadShare]) {
    candidates.retain(|c| {
        !bad.iter()
            .any(|b| b.server == c.server.id && b.shnum == c.shnum)
    });
}

fn bad_share(c: &Candidate, e: &Error) -> BadShare {
    BadShare {
        server: c.server.id.clone(),
        shnum: c.shnum,
        reason: e.to_string(),
        corrupt: e.kind() == ErrorKind::Corrupt,
    }
}

/// Ask every server for its shares; order the candidates so that primary
/// shares come first and share numbers spread over servers.
async fn locate(si: StorageIndex, servers: &[ServerRef], k: u16) -> Vec<Candidate> {
    let answers = join_all(
        servers
            .iter()
            .map(|s| async move { (s, s.service.list_buckets(si).await) }),
    )
    .await;
    let mut out = Vec::new();
    for (server, answer) in answers {
        if let Ok(shares) = answer {
            for (shnum, size) in shares {
                out.push(Candidate {
                    shnum,
                    server: server.clone(),
                    size,
                    head: None,
                });
            }
        }
    }
    // Primary shares first; among copies of one share number, the order
    // servers were given in (the caller puts faster servers first).
    out.sort_by_key(|c| (u16::from(c.shnum) >= k, c.shnum));
    out
}

/// The ciphertext hash tree share `c` (of layout `layout`) carries, read
/// whole (the plan bounds its size: MAX_SEGMENTS) and checked: internally
/// consistent, its root the UEB's.
pub(super) async fn crypttext_tree(
    c: &Candidate,
    si: StorageIndex,
    layout: &ShareLayout,
    plan: &SharePlan,
    ueb: &Ueb,
) -> Result<Vec<Hash>> {
    layout.check(plan.layout.data_size, plan.seg.num_segments)?;
    let count = node_count(plan.seg.num_segments as usize);
    let bytes = read_exact(c, si, layout.crypttext_hash_tree, (count * HASH_LEN) as u64).await?;
    let nodes = parse_hash_nodes(&bytes, count)?;
    check_interior_nodes(&nodes)?;
    if nodes[0] != ueb.crypttext_root_hash {
        return Err(Error::corrupt(
            "ciphertext hash tree root differs from the UEB's",
        ));
    }
    Ok(nodes)
}

/// The share's UEB, checked against the cap's hash, k, n and size.
pub(super) async fn fetch_ueb(
    c: &Candidate,
    si: StorageIndex,
    cap: &ChkVerifierCap,
) -> Result<(Ueb, ShareLayout)> {
    let (bytes, layout) = c.reader(si).packed_ueb().await?;
    if crate::format::chk::ueb::hash_packed(&bytes) != cap.ueb_hash {
        return Err(Error::corrupt("URI extension block does not match the cap"));
    }
    let ueb = Ueb::parse(&bytes)?;
    if ueb.needed_shares != cap.k || ueb.total_shares != cap.n || ueb.size != cap.size {
        return Err(Error::corrupt(
            "URI extension block disagrees with the cap's k, n or size",
        ));
    }
    Ok((ueb, layout))
}

/// Open one share: layout, block hash tree and share hash chain, all
/// checked against the UEB's share root.
pub(super) async fn open_share(ctx: &Context, c: &Candidate) -> Result<OpenShare> {
    let layout = read_layout(c, ctx.si).await?;
    layout.check(ctx.plan.layout.data_size, ctx.plan.seg.num_segments)?;
    let nodes = node_count(ctx.plan.seg.num_segments as usize);
    let bytes = read_exact(
        c,
        ctx.si,
        layout.block_hashes,
        layout.uri_extension - layout.block_hashes,
    )
    .await?;
    let (tree_bytes, chain_bytes) = bytes.split_at(nodes * HASH_LEN);
    let block_tree = parse_hash_nodes(tree_bytes, nodes)?;
    check_interior_nodes(&block_tree)?;
    let chain: HashMap<usize, Hash> = parse_share_hashes(chain_bytes)?
        .into_iter()
        .map(|(i, h)| (usize::from(i), h))
        .collect();
    let n = usize::from(ctx.ueb.total_shares);
    let leaf_index = node_count(n) / 2 + usize::from(c.shnum);
    if chain.get(&leaf_index) != Some(&block_tree[0]) {
        return Err(Error::corrupt(
            "share hash chain does not carry this share's block tree root",
        ));
    }
    verify_leaf(
        &ctx.ueb.share_root_hash,
        n,
        usize::from(c.shnum),
        &block_tree[0],
        |i| chain.get(&i).copied(),
    )
    .map_err(|e| e.context("share hash chain"))?;
    Ok(OpenShare {
        cand: c.clone(),
        layout,
        block_tree,
    })
}

/// Open spare shares until k distinct share numbers are active, and return
/// them (taken under the same lock, so never fewer than k). The shares
/// missing are opened at once, each on its own server.
async fn fill(ctx: &Context, set: &Mutex<ShareSet>) -> Result<Vec<Arc<OpenShare>>> {
    let k = ctx.plan.k as usize;
    let mut s = set.lock().await;
    while s.active.len() < k {
        let (mut picked, mut skipped) = (Vec::<Candidate>::new(), Vec::new());
        while s.active.len() + picked.len() < k {
            let Some(c) = s.spare.pop_front() else { break };
            let taken = s.active.iter().any(|a| a.cand.shnum == c.shnum)
                || picked.iter().any(|p| p.shnum == c.shnum);
            if taken {
                // Another copy of a share number in use: kept in case
                // that one fails.
                skipped.push(c);
            } else {
                picked.push(c);
            }
        }
        for c in skipped.into_iter().rev() {
            s.spare.push_front(c);
        }
        if picked.is_empty() {
            let bad = s.bad.len();
            return Err(Error::not_enough_shares(format!(
                "{} good shares of the {k} needed ({bad} bad or unreachable)",
                s.active.len()
            )));
        }
        let opened = join_all(picked.iter().map(|c| open_share(ctx, c))).await;
        for (c, r) in picked.iter().zip(opened) {
            match r {
                Ok(share) => s.active.push(Arc::new(share)),
                Err(e) => s.bad.push(bad_share(c, &e)),
            }
        }
    }
    s.active.sort_by_key(|a| a.cand.shnum);
    Ok(s.active.clone())
}

/// Check each fetched block of segment `seg` against its share's block
/// hash tree, all of them side by side on a blocking thread. A block that
/// fails becomes a `Corrupt` error in its place.
async fn verify_blocks(
    active: &[Arc<OpenShare>],
    seg: u64,
    fetched: Vec<Result<Bytes>>,
) -> Result<Vec<Result<Bytes>>> {
    let leaves: Vec<Hash> = active
        .iter()
        .map(|s| s.block_tree[s.block_tree.len() / 2 + seg as usize])
        .collect();
    tokio::task::spawn_blocking(move || {
        let ok: Vec<&[u8]> = fetched.iter().filter_map(|r| r.as_deref().ok()).collect();
        let mut digests = block_hashes(&ok).into_iter();
        fetched
            .into_iter()
            .zip(leaves)
            .map(|(r, leaf)| {
                let data = r?;
                match digests.next() {
                    Some(d) if d == leaf => Ok(data),
                    _ => Err(Error::corrupt(format!("block {seg} fails its hash"))),
                }
            })
            .collect()
    })
    .await
    .map_err(|e| Error::internal(format!("block check task failed: {e}")))
}

/// Fetch, decode, check and (with `key`) decrypt one segment.
///
/// The decoded ciphertext is checked against the ciphertext hash tree,
/// whose root the UEB (and so the cap) vouches for: when it matches, the
/// segment is authentic whatever the blocks were, and checking each block
/// against its share's tree as well would only hash the same bytes twice.
/// When it does not match (or a block did not come), the blocks are
/// checked against their shares' trees to find the share to blame, which
/// is dropped and replaced before the segment is fetched again. Blocks
/// that all pass their trees yet decode to ciphertext the tree refuses
/// mean the file was encoded inconsistently: an error, never bytes out.
async fn fetch_segment(
    ctx: &Arc<Context>,
    set: &Mutex<ShareSet>,
    cipher: Arc<dyn Cipher>,
    key: Option<[u8; 16]>,
    seg: u64,
) -> Result<(u64, Vec<u8>)> {
    let plan = &ctx.plan;
    let (offset_in_data, len) = (seg * plan.block_size, plan.block_len(seg));
    loop {
        let active = fill(ctx, set).await?;
        let reads = active.iter().map(|s| async move {
            let off = s.layout.data + offset_in_data;
            read_exact(&s.cand, ctx.si, off, len).await
        });
        let fetched = join_all(reads).await;
        let mut mismatch = None;
        if fetched.iter().all(Result::is_ok) {
            let blocks: BTreeMap<ShareNum, Bytes> = active
                .iter()
                .zip(&fetched)
                .filter_map(|(s, r)| Some((s.cand.shnum, r.as_ref().ok()?.clone())))
                .collect();
            match decode_segment(ctx, cipher.clone(), key, seg, blocks).await? {
                Ok(plain) => return Ok((seg, plain)),
                Err(e) => mismatch = Some(e),
            }
        }
        let results = verify_blocks(&active, seg, fetched).await?;
        let failed: Vec<(Arc<OpenShare>, Error)> = active
            .iter()
            .zip(results)
            .filter_map(|(s, r)| r.err().map(|e| (s.clone(), e)))
            .collect();
        if failed.is_empty() {
            return Err(mismatch.unwrap_or_else(|| {
                Error::internal(format!("segment {seg}: no block failed, yet none decoded"))
            }));
        }
        let mut s = set.lock().await;
        for (share, e) in &failed {
            if let Some(pos) = s.active.iter().position(|a| Arc::ptr_eq(a, share)) {
                s.active.remove(pos);
                s.bad.push(bad_share(&share.cand, e));
            }
        }
    }
}

/// Decode segment `seg` from `blocks`, check its ciphertext against the
/// ciphertext hash tree and decrypt it, on a blocking thread. The inner
/// error says why the blocks gave no verified segment (they decode to
/// ciphertext the tree refuses, or do not decode).
async fn decode_segment(
    ctx: &Arc<Context>,
    cipher: Arc<dyn Cipher>,
    key: Option<[u8; 16]>,
    seg: u64,
    blocks: BTreeMap<ShareNum, Bytes>,
) -> Result<std::result::Result<Vec<u8>, Error>> {
    let ctx = ctx.clone();
    let padded = ctx.plan.padded_segment_len(seg) as usize;
    let range = ctx.plan.seg.segment_range(seg);
    tokio::task::spawn_blocking(move || -> Result<std::result::Result<Vec<u8>, Error>> {
        let given: Vec<Block<'_>> = blocks
            .iter()
            .map(|(&i, d)| Block {
                index: usize::from(i),
                data: d,
            })
            .collect();
        let mut data = match ctx.codec.decode(&given, padded) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        data.truncate((range.end - range.start) as usize);
        let leaf = ctx.crypttext_tree[ctx.crypttext_tree.len() / 2 + seg as usize];
        if tagged_hash(tags::CIPHERTEXT_SEGMENT, &data) != leaf {
            return Ok(Err(Error::corrupt(format!(
                "segment {seg} fails its ciphertext hash after decoding"
            ))));
        }
        // Verified: only now does it become plaintext (when there is a
        // key; a repairer keeps the ciphertext).
        if let Some(key) = key {
            cipher.apply_keystream(&key, range.start, &mut data)?;
        }
        Ok(Ok(data))
    })
    .await
    .map_err(|e| Error::internal(format!("decode task failed: {e}")))?
}

/// Tell servers about corrupt shares (best effort, in the background).
fn advise(si: StorageIndex, bad: &[BadShare], servers: &[ServerRef]) {
    for b in bad.iter().filter(|b| b.corrupt) {
        if let Some(server) = servers.iter().find(|s| s.id == b.server) {
            let (service, shnum, reason) = (server.service.clone(), b.shnum, b.reason.clone());
            tokio::spawn(async move {
                let _ = service.advise_corrupt_share(si, shnum, reason).await;
            });
        }
    }
}
