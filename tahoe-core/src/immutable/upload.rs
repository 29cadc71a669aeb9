//! The upload pipeline.
//!
//! ```text
//! pass 1 (convergent keys only): read → hash          → key
//! pass 2: read → encrypt → whole-ciphertext hash       (one thread, in order)
//!              → segment hash, pad, encode, hash blocks (worker threads,
//!                                                      several segments)
//!              → write blocks to the sink              (async, in order)
//! end:    trees, UEB, cap → write share tails → seal
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

use crate::cap::{Cap, LIT_THRESHOLD, LitCap};
use crate::cipher::Cipher;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::hash::{Hash, TaggedHasher, convergence_hasher, storage_index, tags};
use crate::immutable::KeyMode;
use crate::immutable::encode::{EncodedSegment, HashCollector, encode_segment};
use crate::immutable::plan::SharePlan;
use crate::immutable::sink::ShareSink;
use crate::immutable::source::Source;
use crate::storage::{ShareNum, StorageIndex};

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

impl Uploader {
    /// The encryption key for `source` under this uploader's key mode.
    pub async fn key_for(&self, source: Arc<dyn Source>, plan: &SharePlan) -> Result<[u8; 16]> {
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
        let size = source.size();
        if size <= LIT_THRESHOLD {
            let mut data = vec![0u8; size as usize];
            source.read_at(0, &mut data)?;
            return Ok(Cap::Lit(LitCap { data }));
        }
        check_chk_cipher(self.cipher.as_ref())?;
        let plan = SharePlan::new(size, self.max_segment_size, self.codec.as_ref())?;
        let key = self.key_for(source.clone(), &plan).await?;
        let si = StorageIndex(storage_index(&key));
        let to_write = sink.start(&si, plan.share_size).await?;
        match self.push(source, &plan, key, &to_write, sink).await {
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

    async fn push(
        &self,
        source: Arc<dyn Source>,
        plan: &SharePlan,
        key: [u8; 16],
        to_write: &[ShareNum],
        sink: &dyn ShareSink,
    ) -> Result<(crate::cap::ChkCap, Vec<u8>)> {
        let header = Bytes::from(plan.layout.header());
        sink.write(0, to_write.iter().map(|&s| (s, header.clone())).collect())
            .await?;

        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(2);
        let reader = {
            let (plan, cipher) = (plan.clone(), self.cipher.clone());
            // A convergent key is a hash of the plaintext read in the first
            // pass; hash it again as it is read now, so that a file that
            // changed in between is refused instead of stored under a key
            // that does not match its contents.
            let mut again = match &self.key_mode {
                KeyMode::Convergent(secret) => Some(convergence_hasher(
                    plan.k,
                    plan.n,
                    plan.seg.segment_size,
                    secret,
                )),
                KeyMode::Random => None,
            };
            tokio::task::spawn_blocking(move || -> Result<Hash> {
                let mut whole = TaggedHasher::new(tags::CIPHERTEXT);
                let mut plain = Vec::new();
                for i in 0..plan.seg.num_segments {
                    let r = plan.seg.segment_range(i);
                    let mut buf = vec![0u8; (r.end - r.start) as usize];
                    source.read_at(r.start, &mut buf)?;
                    match again.as_mut() {
                        Some(h) => {
                            plain.clear();
                            plain.extend_from_slice(&buf);
                            cipher.apply_keystream(&key, r.start, &mut buf)?;
                            TaggedHasher::update_many(&mut [h, &mut whole], &[&plain, &buf]);
                        }
                        None => {
                            cipher.apply_keystream(&key, r.start, &mut buf)?;
                            whole.update(&buf);
                        }
                    }
                    if tx.blocking_send((i, buf)).is_err() {
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
                Ok(whole.finalize())
            })
        };

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
                            Some((i, crypttext)) => {
                                let (plan, codec) = (plan.clone(), self.codec.clone());
                                inflight.push_back(tokio::task::spawn_blocking(move || {
                                    encode_segment(&plan, codec.as_ref(), i, crypttext)
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
                let offset = plan.block_offset(seg.index);
                let mut blocks: Vec<Option<Vec<u8>>> = seg.blocks.into_iter().map(Some).collect();
                let pieces = to_write
                    .iter()
                    .filter_map(|&s| {
                        Some((s, Bytes::from(blocks.get_mut(usize::from(s))?.take()?)))
                    })
                    .collect();
                writing.push(sink.write(offset, pieces));
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
        let mut tails: Vec<Option<Vec<u8>>> = finished.tails.into_iter().map(Some).collect();
        let pieces = to_write
            .iter()
            .filter_map(|&s| Some((s, Bytes::from(tails.get_mut(usize::from(s))?.take()?))))
            .collect();
        sink.write(plan.layout.plaintext_hash_tree, pieces).await?;
        Ok((finished.cap, finished.ueb))
    }
}

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
