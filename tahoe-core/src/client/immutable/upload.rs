//! The upload pipeline.
//!
//! ```text
//! pass 1 (convergent keys only): read → hash          → key
//! pass 2: read → encrypt → whole-ciphertext and segment (one thread, in order)
//!              hashes, side by side
//!              → pad, encode, hash blocks              (worker threads,
//!                                                      several segments)
//!              → write blocks to the sink              (async, in order;
//!                                                      the header with the
//!                                                      first, the last held)
//! end:    trees, UEB, cap → write the last blocks and the share tails → seal
//! ```
//!
//! The stages are connected by bounded queues, so at most a handful of
//! segments are in memory whatever the file size, and the CPU-heavy stage
//! runs on as many cores as there are. The ordered stages (the whole-file
//! ciphertext hash, writing) are kept light.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::client::immutable::KeyMode;
use crate::client::immutable::download::VerifiedLayout;
use crate::client::immutable::sink::ShareSink;
use crate::client::source::Source;
use crate::error::{Error, Result};
use crate::format::cap::{Cap, LIT_THRESHOLD, LitCap};
use crate::format::chk::check_chk_cipher;
use crate::format::chk::encode::{EncodedSegment, HashCollector, encode_segment};
use crate::format::chk::plan::SharePlan;
use crate::format::hash::{Hash, TaggedHasher, convergence_hasher, storage_index, tags};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::Codec;
use crate::kinds::storage::{ShareNum, StorageIndex};

/// A sink write in progress.
type WriteFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// Segments being written to the servers at once.
const WRITES_IN_FLIGHT: usize = 4;

/// Chunk size of the convergence pass.
const HASH_CHUNK: usize = 1 << 20;

/// Uploads immutable files with one codec and cipher.
#[derive(Clone)]
pub struct Uploader {
    /// The erasure codec (its k and n are the upload's).
    pub codec: Arc<dyn Codec>,
    /// The cipher; CHK caps carry 16-byte keys, so its key length must be 16.
    pub cipher: Arc<dyn Cipher>,
    /// The largest segment.
    pub max_segment_size: u64,
    /// Convergent or random key.
    pub key_mode: KeyMode,
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("upload worker failed: {e}"))
}

/// How many segments are encoded at once.
fn window() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        + 1
}

/// The convergent key of a file, computed by a caller that sees the bytes
/// before the upload reads them (a gateway spooling a request body, a
/// file written in order through a mount), so that the upload needs no
/// first pass over the file. Made by [`Uploader::key_hasher`] for a file
/// of a known size, or [`Uploader::open_key_hasher`] for one whose size
/// is known only at its end.
pub struct KeyHasher {
    hasher: TaggedHasher,
    /// The sizes the key holds for: those whose segmentation is the one
    /// the hasher was tagged with.
    sizes: std::ops::RangeInclusive<u64>,
    seen: u64,
}

impl KeyHasher {
    /// Feed the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.seen += data.len() as u64;
    }

    /// The key of the file of the bytes fed, or `None` when their count
    /// is not a size the hasher was made for (the key would be another
    /// file's).
    pub fn finish(self) -> Option<PrecomputedKey> {
        self.sizes.contains(&self.seen).then(|| {
            let mut key = [0u8; 16];
            key.copy_from_slice(&self.hasher.finalize()[..16]);
            PrecomputedKey {
                key,
                size: self.seen,
            }
        })
    }
}

/// A convergent key from a [`KeyHasher`], for [`Uploader::upload_with`].
#[derive(Clone, Copy)]
pub struct PrecomputedKey {
    key: [u8; 16],
    size: u64,
}

impl std::fmt::Debug for PrecomputedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrecomputedKey(<key>, {} bytes)", self.size)
    }
}

impl Uploader {
    /// A hasher computing the convergent key of a file of `size` bytes as
    /// its bytes go by; `None` when this uploader's keys are random or the
    /// file would be a LIT cap.
    pub fn key_hasher(&self, size: u64) -> Result<Option<KeyHasher>> {
        let KeyMode::Convergent(secret) = &self.key_mode else {
            return Ok(None);
        };
        if size <= LIT_THRESHOLD {
            return Ok(None);
        }
        let plan = SharePlan::new(size, self.max_segment_size, self.codec.as_ref())?;
        Ok(Some(KeyHasher {
            hasher: convergence_hasher(plan.k, plan.n, plan.seg.segment_size, secret),
            sizes: size..=size,
            seen: 0,
        }))
    }

    /// A hasher computing the convergent key of a file whose size is
    /// known only once its last byte has gone by: it holds for files of
    /// at least `max_segment_size` bytes (all of them are cut into
    /// segments of that size, which the key's tag names; a smaller file's
    /// key costs little to compute again). `None` when keys are random.
    pub fn open_key_hasher(&self) -> Result<Option<KeyHasher>> {
        let KeyMode::Convergent(secret) = &self.key_mode else {
            return Ok(None);
        };
        let min = self.max_segment_size.max(LIT_THRESHOLD + 1);
        let plan = SharePlan::new(min, self.max_segment_size, self.codec.as_ref())?;
        Ok(Some(KeyHasher {
            hasher: convergence_hasher(plan.k, plan.n, plan.seg.segment_size, secret),
            sizes: min..=u64::MAX,
            seen: 0,
        }))
    }

    /// The encryption key for `source` under this uploader's key mode.
    async fn key_for(&self, source: Arc<dyn Source>, plan: &SharePlan) -> Result<[u8; 16]> {
        let mut key = [0u8; 16];
        match &self.key_mode {
            KeyMode::Random => {
                getrandom::fill(&mut key).map_err(|e| Error::internal(format!("random: {e}")))?;
            }
            KeyMode::Convergent(secret) => {
                let mut hasher = convergence_hasher(plan.k, plan.n, plan.seg.segment_size, secret);
                let size = source.size();
                let digest = tokio::task::spawn_blocking(move || -> Result<Hash> {
                    let mut buf = vec![0u8; HASH_CHUNK.min(size as usize)];
                    let mut offset = 0u64;
                    while offset < size {
                        let len = ((size - offset) as usize).min(buf.len());
                        source.read_at(offset, &mut buf[..len])?;
                        hasher.update(&buf[..len]);
                        offset += len as u64;
                    }
                    Ok(hasher.finalize())
                })
                .await
                .map_err(join_error)??;
                key.copy_from_slice(&digest[..16]);
            }
        }
        Ok(key)
    }

    /// Upload `source` through `sink` and return its cap. Files of up to
    /// 55 bytes become LIT caps and never reach the sink.
    pub async fn upload(&self, source: Arc<dyn Source>, sink: &dyn ShareSink) -> Result<Cap> {
        self.upload_with(source, None, sink).await
    }

    /// [`Self::upload`], with the convergent key computed as the file's
    /// bytes went by (`key`, from [`Self::key_hasher`] of this uploader,
    /// for a file of this size; otherwise ignored). The caller vouches that
    /// `source` holds exactly the bytes hashed and does not change (its own
    /// spool file): the upload neither reads the file for the key nor
    /// checks the key against the bytes again.
    pub async fn upload_with(
        &self,
        source: Arc<dyn Source>,
        key: Option<PrecomputedKey>,
        sink: &dyn ShareSink,
    ) -> Result<Cap> {
        let size = source.size();
        if size <= LIT_THRESHOLD {
            let mut data = vec![0u8; size as usize];
            source.read_at(0, &mut data)?;
            return Ok(Cap::Lit(LitCap { data }));
        }
        check_chk_cipher(self.cipher.as_ref())?;
        let plan = SharePlan::new(size, self.max_segment_size, self.codec.as_ref())?;
        let known =
            key.filter(|k| k.size == size && matches!(self.key_mode, KeyMode::Convergent(_)));
        let (key, recheck) = match known {
            Some(k) => (k.key, false),
            None => (self.key_for(source.clone(), &plan).await?, true),
        };
        let si = StorageIndex(storage_index(&key));
        let to_write = sink.start(&si, plan.share_size).await?;
        match self
            .push(
                source,
                &plan,
                key,
                Hashing::Compute { recheck },
                &to_write,
                sink,
            )
            .await
        {
            Ok((cap, ueb)) => {
                sink.finish(&ueb).await?;
                Ok(Cap::Chk(cap))
            }
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }

    /// Encode again the ciphertext of a file already on the grid (`source`,
    /// as [`Downloader::stream_ciphertext`](super::download::Downloader::stream_ciphertext)
    /// wrote it) with `codec`, the file's, and write the shares `sink`
    /// places under `si`; nothing is encrypted and no key is needed. The
    /// file's UEB (`ueb`, vouched for by its verify cap) fixes the
    /// segmentation, and the shares made must reproduce it byte for byte:
    /// otherwise nothing is kept. The ciphertext is not hashed again: its
    /// segments' hashes are the verified ones of `layout`, and any byte
    /// that reached the encoder changed would change the share hash tree,
    /// which the UEB fixes too.
    pub async fn upload_ciphertext(
        codec: Arc<dyn Codec>,
        source: Arc<dyn Source>,
        si: StorageIndex,
        layout: &VerifiedLayout,
        sink: &dyn ShareSink,
    ) -> Result<()> {
        let ueb = &layout.ueb;
        let plan = SharePlan::from_segmentation(ueb.segmentation(), codec.as_ref())?;
        let uploader = Uploader {
            codec,
            cipher: Arc::new(AlreadyEncrypted),
            max_segment_size: ueb.segment_size,
            key_mode: KeyMode::Random,
        };
        let to_write = sink.start(&si, plan.share_size).await?;
        // The cap this makes carries no real key and is dropped: only the
        // UEB matters, and it holds no key.
        match uploader
            .push(
                source,
                &plan,
                [0; 16],
                Hashing::Known {
                    segments: Arc::new(layout.segment_hashes.clone()),
                    whole: ueb.crypttext_hash,
                },
                &to_write,
                sink,
            )
            .await
        {
            Ok((_, made)) if made == ueb.pack() => sink.finish(&made).await,
            Ok(_) => {
                sink.abort().await;
                Err(Error::corrupt(
                    "re-encoding the file's ciphertext does not reproduce its URI extension block",
                ))
            }
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }

    /// Read, encrypt and hash the file a segment at a time on the blocking
    /// pool, handing each segment's ciphertext and hash on (two ahead at
    /// most); the task's result is the whole ciphertext's hash.
    fn read_encrypted(
        &self,
        source: Arc<dyn Source>,
        plan: &SharePlan,
        key: [u8; 16],
        hashing: Hashing,
    ) -> (
        tokio::task::JoinHandle<Result<Hash>>,
        tokio::sync::mpsc::Receiver<EncryptedSegment>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel::<EncryptedSegment>(2);
        let reader = {
            let (plan, cipher) = (plan.clone(), self.cipher.clone());
            // A convergent key is a hash of the plaintext read in the first
            // pass; hash it again as it is read now, so that a file that
            // changed in between is refused instead of stored under a key
            // that does not match its contents.
            let recheck = matches!(hashing, Hashing::Compute { recheck: true });
            let mut again = match &self.key_mode {
                KeyMode::Convergent(secret) if recheck => Some(convergence_hasher(
                    plan.k,
                    plan.n,
                    plan.seg.segment_size,
                    secret,
                )),
                _ => None,
            };
            tokio::task::spawn_blocking(move || -> Result<Hash> {
                let mut whole = TaggedHasher::new(tags::CIPHERTEXT);
                let mut plain = Vec::new();
                for i in 0..plan.seg.num_segments {
                    let r = plan.seg.segment_range(i);
                    let mut buf = vec![0u8; (r.end - r.start) as usize];
                    source.read_at(r.start, &mut buf)?;
                    if let Hashing::Known { segments, .. } = &hashing {
                        cipher.apply_keystream(&key, r.start, &mut buf)?;
                        let hash = segments[i as usize];
                        if tx.blocking_send((i, buf, hash)).is_err() {
                            return Err(Error::internal("upload stopped"));
                        }
                        continue;
                    }
                    // The whole-file and this segment's ciphertext hashes
                    // (and the plaintext's again, when rechecked) are
                    // streams of one length: hashed side by side.
                    let mut segment = TaggedHasher::new(tags::CIPHERTEXT_SEGMENT);
                    match again.as_mut() {
                        Some(h) => {
                            plain.clear();
                            plain.extend_from_slice(&buf);
                            cipher.apply_keystream(&key, r.start, &mut buf)?;
                            TaggedHasher::update_many(
                                &mut [h, &mut whole, &mut segment],
                                &[&plain, &buf, &buf],
                            );
                        }
                        None => {
                            cipher.apply_keystream(&key, r.start, &mut buf)?;
                            TaggedHasher::update_many(
                                &mut [&mut whole, &mut segment],
                                &[&buf, &buf],
                            );
                        }
                    }
                    if tx.blocking_send((i, buf, segment.finalize())).is_err() {
                        return Err(Error::internal("upload stopped"));
                    }
                }
                if let Some(h) = again
                    && h.finalize()[..16] != key
                {
                    return Err(Error::invalid_input(
                        "the file changed while it was being uploaded (its contents no \
                         longer match the key computed from them); upload it again",
                    ));
                }
                Ok(match hashing {
                    Hashing::Known { whole, .. } => whole,
                    Hashing::Compute { .. } => whole.finalize(),
                })
            })
        };
        (reader, rx)
    }

    async fn push(
        &self,
        source: Arc<dyn Source>,
        plan: &SharePlan,
        key: [u8; 16],
        hashing: Hashing,
        to_write: &[ShareNum],
        sink: &dyn ShareSink,
    ) -> Result<(crate::format::cap::ChkCap, Vec<u8>)> {
        // The header goes out with the first segment's blocks, and the last
        // segment's blocks with the tails (each is contiguous with the
        // other): a one-segment file takes one write per share, not three.
        let header = plan.layout.header();
        let last = plan.seg.num_segments - 1;
        let mut held: Option<Vec<Vec<u8>>> = None;

        let (reader, mut rx) = self.read_encrypted(source, plan, key, hashing);

        let mut collector = HashCollector::new(plan);
        let mut inflight: VecDeque<tokio::task::JoinHandle<Result<EncodedSegment>>> =
            VecDeque::new();
        let mut input_done = false;
        let window = window();
        let result: Result<()> = async {
            // Up to WRITES_IN_FLIGHT segments' blocks are on their way to
            // the servers while later segments are read and encoded, so
            // round trips to the servers overlap each other and the CPU work.
            let mut writing: FuturesUnordered<WriteFuture<'_>> = FuturesUnordered::new();
            loop {
                let next = async {
                    while !input_done && inflight.len() < window {
                        match rx.recv().await {
                            Some((i, crypttext, hash)) => {
                                let (plan, codec) = (plan.clone(), self.codec.clone());
                                inflight.push_back(tokio::task::spawn_blocking(move || {
                                    encode_segment(&plan, codec.as_ref(), i, crypttext, hash)
                                }));
                            }
                            None => input_done = true,
                        }
                    }
                    match inflight.pop_front() {
                        Some(task) => Some(task.await),
                        None => None,
                    }
                };
                tokio::pin!(next);
                let next = loop {
                    if writing.is_empty() {
                        break next.await;
                    }
                    tokio::select! {
                        n = &mut next => break n,
                        Some(w) = writing.next() => w?,
                    }
                };
                let Some(seg) = next else { break };
                let seg = seg.map_err(join_error)??;
                collector.add(&seg)?;
                if seg.index == last {
                    held = Some(seg.blocks);
                    continue;
                }
                let (offset, blocks) = if seg.index == 0 {
                    let b = seg.blocks.iter().map(|b| [&header[..], b].concat());
                    (0, b.collect())
                } else {
                    (plan.block_offset(seg.index), seg.blocks)
                };
                writing.push(sink.write(offset, pieces(to_write, blocks)));
                while writing.len() >= WRITES_IN_FLIGHT {
                    if let Some(w) = writing.next().await {
                        w?;
                    }
                }
            }
            while let Some(w) = writing.next().await {
                w?;
            }
            Ok(())
        }
        .await;
        drop(rx);
        let crypttext_hash = reader.await.map_err(join_error)?;
        result?;
        let crypttext_hash = crypttext_hash?;

        let finished = collector.finish(key, crypttext_hash)?;
        let blocks = held.ok_or_else(|| Error::internal("no last segment"))?;
        let (offset, head) = match last {
            0 => (0, &header[..]),
            _ => (plan.block_offset(last), &[][..]),
        };
        let ends = blocks
            .iter()
            .zip(&finished.tails)
            .map(|(block, tail)| [head, block, tail].concat())
            .collect();
        sink.write(offset, pieces(to_write, ends)).await?;
        Ok((finished.cap, finished.ueb))
    }
}

/// Where the ciphertext's hashes (each segment's and the whole file's)
/// come from.
enum Hashing {
    /// Hashed as the file is read (an upload); `recheck`: the plaintext
    /// is hashed again for its convergent key, which must not change.
    Compute { recheck: bool },
    /// Known already (a repair: the download checked every segment against
    /// these, and the UEB holds the whole file's).
    Known {
        segments: Arc<Vec<Hash>>,
        whole: Hash,
    },
}

/// One segment read and encrypted: its index, its ciphertext and the hash
/// of that ciphertext.
type EncryptedSegment = (u64, Vec<u8>, Hash);

/// The pieces of the shares to write, out of one piece per share.
fn pieces(to_write: &[ShareNum], all: Vec<Vec<u8>>) -> Vec<(ShareNum, Bytes)> {
    let mut all: Vec<Option<Vec<u8>>> = all.into_iter().map(Some).collect();
    to_write
        .iter()
        .filter_map(|&s| Some((s, Bytes::from(all.get_mut(usize::from(s))?.take()?))))
        .collect()
}

/// The cipher of data that is ciphertext already: leaves it as it is.
struct AlreadyEncrypted;

impl Cipher for AlreadyEncrypted {
    fn name(&self) -> &str {
        "already-encrypted"
    }
    fn key_len(&self) -> usize {
        16
    }
    fn apply_keystream(&self, _key: &[u8], _offset: u64, _data: &mut [u8]) -> Result<()> {
        Ok(())
    }
}
