//! Writing a new version of a mutable file.
//!
//! Every share is written with Tahoe's test-and-write call, guarded by the
//! slot's per-server write enabler. The first call to each share tests
//! what the servermap saw there (the old version's checkstring, or "no
//! share"), so a writer that raced us is detected and we stop instead of
//! overwriting it; later calls to the same share test the provisional
//! checkstring our first call left (new sequence number, zero root hash),
//! and the last call writes the real header.
//!
//! Two phases keep the previous version readable when a publish fails: the
//! servers holding k of the old version's shares (chosen the same way by
//! every writer) are written only after every other share of the new
//! version has been written. A publish that fails or conflicts in the
//! first phase has not touched them; once the second phase starts, the new
//! version is already recoverable. When every share goes in one call (each
//! atomic, by the storage contract) and the old version has enough share
//! numbers that either it or the new one survives any failure
//! (`either_stays`), one phase does: a small file's overwrite is then one
//! round of writes, not two.
//!
//! Blocks are sent in calls of about `FLUSH_BYTES` per server, one call
//! in flight per server, so memory stays at a few segments. Shares of the
//! second phase are held in memory until the first phase is done when the
//! file is small, and re-encoded in a second pass otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;

use crate::client::mutable::rsa::SigningKey;
use crate::client::mutable::servermap::ServerMap;
use crate::client::secrets::{ClientSecret, write_enabler};
use crate::client::servers::permuted;
use crate::error::{Error, ErrorKind, Result};
use crate::format::cap::SskWriteCap;
use crate::format::hash::Hash;
use crate::format::hashtree::padded_leaves;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::encode::{
    EncodedSegment, SignedVersion, block_bytes, encode_segment, sign,
};
use crate::format::ssk::keys::{apply_ctr, fingerprint, read_key, write_key};
use crate::format::ssk::layout::{Geometry, Offsets, Prefix, RegionLens, SALT_LEN};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::Codec;
use crate::kinds::storage::{ShareNum, StorageIndex, TestVector, WriteVector};
use crate::protocol::{SlotSecrets, SlotWrite};

/// Bytes a server's pending writes reach before they are sent.
const FLUSH_BYTES: usize = 1 << 20;

/// Second-phase shares are held in memory (not re-encoded) up to this
/// file size.
const HOLD_LIMIT: u64 = 32 << 20;

/// Calls in flight to one server at most: with one, the encoder waited on
/// each server's answer in turn and a 1 GiB MDMF put left a third of both
/// cores idle. Share data in flight: at most this times [`FLUSH_BYTES`]
/// per server.
const CALLS_IN_FLIGHT: usize = 3;

/// Segments encoded at once.
const WINDOW: usize = 4;

/// The keys of a file being written.
#[derive(Clone)]
pub struct WriteKeys {
    /// The write cap.
    pub cap: SskWriteCap,
    /// The signing key.
    pub signing: SigningKey,
    /// The read key.
    pub read_key: [u8; 16],
    /// The private key as shares carry it (encrypted under the write key).
    pub enc_privkey: Vec<u8>,
}

impl WriteKeys {
    /// The keys of a new file of `format` signed by `signing`.
    pub fn new(signing: SigningKey, format: MutableFormat, cipher: &dyn Cipher) -> Result<Self> {
        let wk = signing.write_key();
        let mut enc_privkey = signing.der().to_vec();
        apply_ctr(cipher, &wk, &mut enc_privkey)?;
        Ok(WriteKeys {
            cap: signing.write_cap(format),
            read_key: read_key(&wk),
            signing,
            enc_privkey,
        })
    }

    /// Recover the signing key from a share's encrypted private key: it
    /// must decrypt to a key whose write key and fingerprint are the cap's.
    pub fn from_share(cap: &SskWriteCap, enc_privkey: &[u8], cipher: &dyn Cipher) -> Result<Self> {
        let mut der = enc_privkey.to_vec();
        apply_ctr(cipher, &cap.write_key, &mut der)?;
        if write_key(&der) != cap.write_key {
            return Err(Error::corrupt(
                "the share's private key is not the write cap's".to_string(),
            ));
        }
        let signing = SigningKey::from_der(&der)?;
        if fingerprint(signing.verifying_key().der()) != cap.fingerprint {
            return Err(Error::corrupt(
                "the share's private key does not match the cap's fingerprint".to_string(),
            ));
        }
        let keys = WriteKeys::new(signing, cap.format, cipher)?;
        debug_assert_eq!(keys.enc_privkey, enc_privkey);
        Ok(keys)
    }
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// The version written.
    pub prefix: Prefix,
    /// Shares written, as (server id, share number).
    pub placed: Vec<(String, ShareNum)>,
    /// Servers that failed, with the error.
    pub failures: Vec<(String, String)>,
}

/// Aborts a task when dropped (an encoder whose consumer gave up).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where one share goes and what must be there now.
#[derive(Debug, Clone)]
struct Placement {
    server: usize,
    shnum: ShareNum,
    /// What the first write tests.
    test: TestVector,
}

/// Gives the plaintext of segment `i` (exactly its bytes); called on
/// worker threads.
pub type SegmentSource = Arc<dyn Fn(u64) -> Result<Vec<u8>> + Send + Sync>;

/// What to encode.
pub struct Plan {
    /// The new version's segmentation.
    pub geo: Geometry,
    /// The segments to encode and write; the others keep their blocks.
    pub segments: Range<u64>,
    /// Salts of the segments written (SDMF: one, the IV).
    pub salts: Vec<[u8; SALT_LEN]>,
    /// Plaintext of the segments written.
    pub source: SegmentSource,
    /// Leaves of the segments not written, per share number, from the
    /// version being replaced (writes at an offset only).
    pub kept_leaves: Option<BTreeMap<ShareNum, Vec<Hash>>>,
    /// The (server, share) pairs to write, for writes at an offset (which
    /// change shares of the version they read, and only those); `None`
    /// places every share of a whole new version.
    pub targets: Option<Vec<(usize, ShareNum)>>,
    /// The shares keep the layout of the version replaced (a write at an
    /// offset that did not change the segment count): only headers,
    /// hashes, the signature and the touched blocks are written.
    pub in_place: bool,
    /// The sequence number of the new version.
    pub seqnum: u64,
    /// The read key the segments are encrypted under.
    pub read_key: [u8; 16],
}

/// Publishes versions.
#[derive(Clone)]
pub struct Publisher {
    /// The erasure codec (its k and n are the file's for new files).
    pub codec: Arc<dyn Codec>,
    /// AES-128-CTR.
    pub cipher: Arc<dyn Cipher>,
    /// This client's secret (lease secrets).
    pub secret: ClientSecret,
    /// Distinct servers a new version must reach (capped at the servers
    /// there are).
    pub happy: u16,
}

/// One server's share writer.
struct ServerWriter {
    server: usize,
    si: StorageIndex,
    secrets: SlotSecrets,
    service: Arc<dyn crate::protocol::StorageService>,
    /// Shares of this server, with their current test.
    shares: BTreeMap<ShareNum, TestVector>,
    pending: BTreeMap<ShareNum, Vec<WriteVector>>,
    pending_bytes: usize,
    /// Calls sent and not yet answered, oldest first.
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<Result<bool>>>,
    /// The last call sent changes what later calls test (it was the first
    /// to this server): nothing may be sent before it is answered.
    barrier: bool,
    /// Keep everything until [`ServerWriter::release`].
    held: bool,
    failed: Option<Error>,
}

impl ServerWriter {
    /// Queue a write (split so that no call carries more than about
    /// [`FLUSH_BYTES`]).
    fn push(&mut self, shnum: ShareNum, offset: u64, data: Vec<u8>) {
        if self.failed.is_some() {
            return;
        }
        let data = Bytes::from(data);
        let mut at = 0;
        while at < data.len() || (at == 0 && data.is_empty()) {
            let end = (at + FLUSH_BYTES).min(data.len());
            self.pending_bytes += end - at;
            self.pending.entry(shnum).or_default().push(WriteVector {
                offset: offset + at as u64,
                data: data.slice(at..end),
            });
            if end == data.len() {
                break;
            }
            at = end;
        }
    }

    /// Wait for every call in flight; records a failure.
    async fn settle(&mut self) {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
    }

    /// Wait for the oldest call in flight; records a failure.
    async fn settle_one(&mut self) {
        if let Some(h) = self.in_flight.pop_front() {
            let r = h
                .await
                .unwrap_or_else(|e| Err(Error::internal(format!("write task: {e}"))));
            match r {
                Ok(true) => {}
                Ok(false) => {
                    self.failed = Some(Error::conflict(format!(
                        "another writer changed mutable file {} on this server since it was read",
                        self.si
                    )))
                }
                Err(e) => self.failed = Some(e),
            }
        }
    }

    /// Send what is pending, in calls of about [`FLUSH_BYTES`]. The
    /// first call to a share goes alone (it replaces the checkstring the
    /// others test); the calls after it test the provisional checkstring
    /// and write disjoint ranges, so they commute, and up to
    /// [`CALLS_IN_FLIGHT`] go at once (a server serves a connection's calls
    /// concurrently, in any order). With `final_len`, this is the share's
    /// last flush: its last call, sent once every other is answered,
    /// writes the real header (every write at offset 0 goes into it, so
    /// earlier calls still find the provisional checkstring they test) and
    /// sets the share's length.
    async fn flush(&mut self, provisional: &[u8], final_len: Option<u64>) {
        let mut vectors: Vec<(ShareNum, WriteVector)> = std::mem::take(&mut self.pending)
            .into_iter()
            .flat_map(|(shnum, v)| v.into_iter().map(move |w| (shnum, w)))
            .collect();
        self.pending_bytes = 0;
        if final_len.is_some() {
            // Stable: the header writes keep their order, after the rest.
            vectors.sort_by_key(|(_, w)| w.offset == 0);
        }
        let mut batches: Vec<Vec<(ShareNum, WriteVector)>> = Vec::new();
        let mut size = usize::MAX;
        for (shnum, w) in vectors {
            let header = final_len.is_some() && w.offset == 0;
            let fits = size.saturating_add(w.data.len()) <= FLUSH_BYTES;
            let in_header_batch = batches
                .last()
                .is_some_and(|b| b.iter().any(|(_, v)| v.offset == 0));
            if batches.is_empty() || !(fits || header && in_header_batch) {
                batches.push(Vec::new());
                size = 0;
            }
            size += w.data.len();
            if let Some(b) = batches.last_mut() {
                b.push((shnum, w));
            }
        }
        if batches.is_empty() && final_len.is_some() {
            batches.push(Vec::new());
        }
        let count = batches.len();
        for (i, batch) in batches.into_iter().enumerate() {
            let last = final_len.is_some() && i + 1 == count;
            if last || self.barrier {
                self.settle().await;
            }
            while self.in_flight.len() >= CALLS_IN_FLIGHT {
                self.settle_one().await;
            }
            if self.failed.is_some() {
                return;
            }
            self.barrier = self
                .shares
                .values()
                .any(|t| t.expected.as_ref() != provisional);
            let mut writes = BTreeMap::new();
            for (&shnum, test) in &self.shares {
                let mut vs: Vec<WriteVector> = batch
                    .iter()
                    .filter(|(s, _)| *s == shnum)
                    .map(|(_, w)| w.clone())
                    .collect();
                if !last && test.expected.as_ref() != provisional {
                    // The first call leaves the provisional checkstring,
                    // which later calls test (a racing writer's would not
                    // match).
                    vs.push(WriteVector {
                        offset: 0,
                        data: Bytes::copy_from_slice(provisional),
                    });
                }
                writes.insert(
                    shnum,
                    SlotWrite {
                        tests: vec![test.clone()],
                        writes: vs,
                        new_length: if last { final_len } else { None },
                    },
                );
            }
            if !last {
                for test in self.shares.values_mut() {
                    *test = TestVector::equals(0, Bytes::copy_from_slice(provisional));
                }
            }
            let service = self.service.clone();
            let (si, secrets) = (self.si, self.secrets.clone());
            self.in_flight.push_back(tokio::spawn(async move {
                let (ok, _) = service
                    .slot_testv_and_readv_and_writev(si, secrets, writes, vec![])
                    .await?;
                Ok(ok)
            }));
        }
    }
}

impl Publisher {
    /// Where the shares of a new version go: every share the map saw stays
    /// where it is (and is tested against what is there); share numbers
    /// not seen go to servers holding none, in the storage index's
    /// permuted order (several per server when servers are few).
    fn placements(&self, map: &ServerMap, n: u8) -> Result<Vec<Placement>> {
        if map.servers.is_empty() {
            return Err(Error::unhappy("no storage servers are known".to_string()));
        }
        let answered: BTreeSet<usize> = (0..map.servers.len())
            .filter(|i| !map.failures.iter().any(|(s, _)| s == i))
            .collect();
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (&(server, shnum), checkstring) in &map.checkstrings {
            if shnum >= ShareNum::from(n) {
                continue;
            }
            seen.insert(shnum);
            out.push(Placement {
                server,
                shnum,
                test: TestVector::equals(0, Bytes::copy_from_slice(checkstring)),
            });
        }
        let holding: BTreeSet<usize> = out.iter().map(|p| p.server).collect();
        let order: Vec<usize> = permuted(&map.servers, &map.storage_index)
            .iter()
            .filter_map(|s| map.servers.iter().position(|t| t.id == s.id))
            .filter(|i| answered.contains(i))
            .collect();
        let free: Vec<usize> = order
            .iter()
            .copied()
            .filter(|i| !holding.contains(i))
            .collect();
        let targets = if free.is_empty() { &order } else { &free };
        if targets.is_empty() {
            return Err(Error::unavailable(format!(
                "no storage server answered: {}",
                map.describe()
            )));
        }
        let missing: Vec<ShareNum> = (0..ShareNum::from(n))
            .filter(|s| !seen.contains(s))
            .collect();
        for (i, shnum) in missing.into_iter().enumerate() {
            out.push(Placement {
                server: targets[i % targets.len()],
                shnum,
                test: TestVector::absent(),
            });
        }
        Ok(out)
    }

    /// The servers written in the second phase: those holding k distinct
    /// shares of the version being replaced (highest share numbers first,
    /// so that every writer picks the same ones). Empty when there is no
    /// recoverable old version to keep.
    fn second_phase(map: &ServerMap) -> BTreeSet<usize> {
        let Ok(Some((prefix, shares))) = map.best() else {
            return BTreeSet::new();
        };
        let mut by_shnum: Vec<_> = shares.iter().map(|s| (s.shnum, s.server)).collect();
        by_shnum.sort_by(|a, b| b.cmp(a));
        let mut servers = BTreeSet::new();
        let mut covered = BTreeSet::new();
        for (shnum, server) in by_shnum {
            if covered.len() >= usize::from(prefix.k) {
                break;
            }
            if servers.insert(server) {
                covered.insert(shnum);
            }
            let on: Vec<ShareNum> = shares
                .iter()
                .filter(|s| s.server == server)
                .map(|s| s.shnum)
                .collect();
            covered.extend(on);
        }
        servers
    }

    /// Whether a one-phase publish leaves a recoverable version (the old or
    /// the new) whatever fails: every share is then written in one call
    /// (no writer has more than [`FLUSH_BYTES`] to send, with `eof` bytes
    /// per share at most), which the storage contract makes atomic per
    /// share, so each share number of the old version ends up old or new
    /// (or both, on different servers). With `d` distinct old share
    /// numbers overwritten, if fewer than the old k stay old then more than
    /// `d - k_old` turned new, which is at least the new k when
    /// `d >= k_old + k_new - 1`. Then the second phase, a whole round trip
    /// more, guards nothing (a 1 MB overwrite on the bench grid: 9 ms in
    /// two phases, less in one).
    fn either_stays(
        map: &ServerMap,
        writers: &BTreeMap<usize, ServerWriter>,
        eof: u64,
        k_new: u64,
    ) -> bool {
        let one_call = writers
            .values()
            .all(|w| (w.shares.len() as u64).saturating_mul(eof) < FLUSH_BYTES as u64);
        let Ok(Some((prefix, shares))) = map.best() else {
            return false;
        };
        let overwritten: BTreeSet<ShareNum> = shares
            .iter()
            .filter(|s| {
                writers
                    .get(&s.server)
                    .is_some_and(|w| w.shares.contains_key(&s.shnum))
            })
            .map(|s| s.shnum)
            .collect();
        one_call && overwritten.len() as u64 + 1 >= u64::from(prefix.k) + k_new
    }

    /// Publish `plan` as the new version of the file of `keys`, replacing
    /// what `map` saw: in one phase, or in two when a recoverable old
    /// version must stay readable until the new one is (see
    /// `second_phase`).
    pub async fn publish(
        &self,
        map: &ServerMap,
        keys: &WriteKeys,
        plan: Plan,
    ) -> Result<PublishReport> {
        let geo = plan.geo;
        let n = self.codec.params().n() as u8;
        if geo.k != self.codec.params().k() as u64 {
            return Err(Error::internal(
                "codec k differs from the plan's".to_string(),
            ));
        }
        let mut writers = self.writers(map, keys, &plan, n)?;
        // Where blocks go depends only on region sizes known before signing.
        let offsets = Offsets::compute(
            &geo,
            RegionLens {
                verification_key: keys.signing.verifying_key().der().len() as u64,
                signature: keys.signing.signature_len() as u64,
                chain_entries: u64::from(padded_leaves(usize::from(n)).trailing_zeros()),
                enc_privkey: keys.enc_privkey.len() as u64,
            },
        )?;
        let second: BTreeSet<usize> = Self::second_phase(map)
            .into_iter()
            .filter(|s| writers.contains_key(s))
            .collect();
        let two_phase = !second.is_empty()
            && second.len() < writers.len()
            && !Self::either_stays(map, &writers, offsets.eof, geo.k);
        let second = if two_phase { second } else { BTreeSet::new() };
        let hold = geo.data_length <= HOLD_LIMIT;
        for (s, w) in writers.iter_mut() {
            w.held = hold && second.contains(s);
        }
        let iv = (geo.format == MutableFormat::Sdmf)
            .then(|| plan.salts.first().copied())
            .flatten();
        let provisional = provisional_prefix(geo.format, plan.seqnum, iv);
        // Pass 1: every share's leaves; blocks of the first phase (and,
        // when held, of the second).
        let skip: BTreeSet<usize> = if hold {
            BTreeSet::new()
        } else {
            second.clone()
        };
        let leaves = self
            .encode_pass(&plan, &mut writers, &skip, &provisional, &offsets)
            .await?;
        let version = self.sign_version(&plan, keys, leaves, iv)?;
        if version.offsets != offsets {
            return Err(Error::internal("the signed layout moved".to_string()));
        }
        let first: Vec<usize> = writers
            .keys()
            .copied()
            .filter(|s| !second.contains(s))
            .collect();
        let in_place = plan.in_place.then(|| plan.segments.clone());
        self.finish(&version, &mut writers, &first, &provisional, &in_place)
            .await;
        if let Some(conflict) = Self::conflict(&writers) {
            return Err(conflict);
        }
        if !second.is_empty() {
            // Go on only when the first phase went through whole, or left
            // the new version recoverable without the second phase.
            let written = Self::shares_written(&writers, &first);
            let failed = first
                .iter()
                .any(|s| writers.get(s).is_some_and(|w| w.failed.is_some()));
            if failed && written < usize::from(version.prefix.k) {
                return Err(Error::unhappy(format!(
                    "only {written} share(s) of the new version could be written ({}); the \
                     previous version was left in place",
                    Self::failure_list(map, &writers)
                )));
            }
            if !hold {
                let skip: BTreeSet<usize> = first.iter().copied().collect();
                self.encode_pass(&plan, &mut writers, &skip, &provisional, &offsets)
                    .await?;
            }
            let rest: Vec<usize> = second.iter().copied().collect();
            for s in &rest {
                if let Some(w) = writers.get_mut(s) {
                    w.held = false;
                }
            }
            self.finish(&version, &mut writers, &rest, &provisional, &in_place)
                .await;
        }
        self.outcome(map, &version, &writers, &keys.cap.storage_index())
    }

    /// One writer per server the new version's shares go to, each knowing
    /// its shares and the test it writes them under.
    fn writers(
        &self,
        map: &ServerMap,
        keys: &WriteKeys,
        plan: &Plan,
        n: u8,
    ) -> Result<BTreeMap<usize, ServerWriter>> {
        let placements = match &plan.targets {
            Some(targets) => targets
                .iter()
                .map(|&(server, shnum)| Placement {
                    server,
                    shnum,
                    test: TestVector::equals(
                        0,
                        Bytes::from(
                            map.checkstrings
                                .get(&(server, shnum))
                                .cloned()
                                .unwrap_or_default(),
                        ),
                    ),
                })
                .collect(),
            None => self.placements(map, n)?,
        };
        let si = keys.cap.storage_index();
        let file_secrets = self.secret.for_file(&si);
        let mut writers: BTreeMap<usize, ServerWriter> = BTreeMap::new();
        for p in &placements {
            let s = &map.servers[p.server];
            let w = writers.entry(p.server).or_insert_with(|| {
                let lease = file_secrets.for_server(&s.id);
                ServerWriter {
                    server: p.server,
                    si,
                    secrets: SlotSecrets {
                        write_enabler: write_enabler(&keys.cap.write_key, &s.id),
                        renew_secret: lease.renew,
                        cancel_secret: lease.cancel,
                    },
                    service: s.service.clone(),
                    shares: BTreeMap::new(),
                    pending: BTreeMap::new(),
                    pending_bytes: 0,
                    in_flight: Default::default(),
                    barrier: false,
                    held: false,
                    failed: None,
                }
            });
            w.shares.insert(p.shnum, p.test.clone());
        }
        Ok(writers)
    }

    /// How the publish of `version` ended: an error unless a recoverable
    /// number of its shares were written; a shortfall of servers is
    /// reported, not an error (the version is what readers now see, and an
    /// error would claim the old one still stands).
    fn outcome(
        &self,
        map: &ServerMap,
        version: &SignedVersion,
        writers: &BTreeMap<usize, ServerWriter>,
        si: &crate::kinds::storage::StorageIndex,
    ) -> Result<PublishReport> {
        let all: Vec<usize> = writers.keys().copied().collect();
        let written = Self::shares_written(writers, &all);
        if let Some(conflict) = Self::conflict(writers) {
            return Err(conflict);
        }
        if written < usize::from(version.prefix.k) {
            return Err(Error::unhappy(format!(
                "only {written} share(s) of the new version could be written, {} needed ({})",
                version.prefix.k,
                Self::failure_list(map, writers)
            )));
        }
        let servers_ok = writers.values().filter(|w| w.failed.is_none()).count();
        let want_servers = usize::from(self.happy).min(writers.len()).max(1);
        if servers_ok < want_servers {
            tracing::warn!(
                "version {} of {} reached {servers_ok} of the {want_servers} servers wanted ({})",
                version.prefix.seqnum,
                si,
                Self::failure_list(map, writers)
            );
        }
        Ok(PublishReport {
            prefix: version.prefix.clone(),
            placed: writers
                .values()
                .filter(|w| w.failed.is_none())
                .flat_map(|w| {
                    w.shares
                        .keys()
                        .map(|&s| (map.servers[w.server].id.clone(), s))
                })
                .collect(),
            failures: writers
                .values()
                .filter_map(|w| {
                    w.failed
                        .as_ref()
                        .map(|e| (map.servers[w.server].id.clone(), e.to_string()))
                })
                .collect(),
        })
    }

    /// A conflict any writer met: another writer got there first.
    fn conflict(writers: &BTreeMap<usize, ServerWriter>) -> Option<Error> {
        writers
            .values()
            .filter_map(|w| w.failed.clone())
            .find(|e| e.kind() == ErrorKind::Conflict)
    }

    fn shares_written(writers: &BTreeMap<usize, ServerWriter>, which: &[usize]) -> usize {
        which
            .iter()
            .filter_map(|s| writers.get(s))
            .filter(|w| w.failed.is_none())
            .flat_map(|w| w.shares.keys().copied())
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn failure_list(map: &ServerMap, writers: &BTreeMap<usize, ServerWriter>) -> String {
        let f: Vec<String> = writers
            .values()
            .filter_map(|w| {
                w.failed
                    .as_ref()
                    .map(|e| format!("{}: {e}", map.servers[w.server].id))
            })
            .collect();
        if f.is_empty() {
            "no server failed".into()
        } else {
            f.join("; ")
        }
    }

    /// Encode the plan's segments, queue the blocks of writers not in
    /// `skip`, and return every share's leaves (kept ones included).
    async fn encode_pass(
        &self,
        plan: &Plan,
        writers: &mut BTreeMap<usize, ServerWriter>,
        skip: &BTreeSet<usize>,
        provisional: &[u8],
        offsets: &Offsets,
    ) -> Result<Vec<Vec<Hash>>> {
        let geo = plan.geo;
        let n = usize::from(self.codec.params().n() as u8);
        let mut leaves: Vec<Vec<Hash>> = (0..n)
            .map(|shnum| match &plan.kept_leaves {
                Some(kept) => {
                    let mut l = kept.get(&(shnum as ShareNum)).cloned().unwrap_or_default();
                    l.resize(geo.segments as usize, [0; 32]);
                    l
                }
                None => vec![[0; 32]; geo.segments as usize],
            })
            .collect();
        let first = plan.segments.start;
        // Encoding runs in its own task, a few segments ahead, so that it
        // goes on while this loop waits for a server to take a call.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<EncodedSegment>>(WINDOW);
        let (codec, cipher) = (self.codec.clone(), self.cipher.clone());
        let (source, salts, read_key) = (plan.source.clone(), plan.salts.clone(), plan.read_key);
        let segments = plan.segments.clone();
        let producer = tokio::spawn(async move {
            let mut stream = futures::stream::iter(segments)
                .map(|seg| {
                    let (codec, cipher, source) = (codec.clone(), cipher.clone(), source.clone());
                    let salt = salts[(seg - first) as usize];
                    async move {
                        tokio::task::spawn_blocking(move || -> Result<EncodedSegment> {
                            let plain = source(seg)?;
                            encode_segment(
                                &geo,
                                codec.as_ref(),
                                cipher.as_ref(),
                                &read_key,
                                seg,
                                salt,
                                &plain,
                            )
                        })
                        .await
                        .map_err(|e| Error::internal(format!("encode task: {e}")))?
                    }
                })
                .buffered(WINDOW);
            while let Some(seg) = stream.next().await {
                if tx.send(seg).await.is_err() {
                    return;
                }
            }
        });
        let _stop = AbortOnDrop(producer);
        let mut received = 0u64;
        while let Some(seg) = rx.recv().await {
            let seg = seg?;
            received += 1;
            for (shnum, l) in leaves.iter_mut().enumerate() {
                l[seg.segnum as usize] = seg.leaves[shnum];
            }
            for w in writers.values_mut() {
                if skip.contains(&w.server) {
                    continue;
                }
                let shnums: Vec<ShareNum> = w.shares.keys().copied().collect();
                for shnum in shnums {
                    let at = offsets.share_data.start + geo.block_offset(seg.segnum);
                    w.push(shnum, at, block_bytes(geo.format, &seg, usize::from(shnum)));
                }
                if !w.held && w.pending_bytes >= FLUSH_BYTES {
                    w.flush(provisional, None).await;
                }
            }
        }
        if received != plan.segments.end - plan.segments.start {
            return Err(Error::internal(format!(
                "the encoder stopped after {received} of {} segments",
                plan.segments.end - plan.segments.start
            )));
        }
        Ok(leaves)
    }

    fn sign_version(
        &self,
        plan: &Plan,
        keys: &WriteKeys,
        leaves: Vec<Vec<Hash>>,
        iv: Option<[u8; SALT_LEN]>,
    ) -> Result<SignedVersion> {
        sign(
            &plan.geo,
            plan.seqnum,
            self.codec.params().n() as u8,
            iv,
            &leaves,
            keys.signing.verifying_key().der().to_vec(),
            keys.enc_privkey.clone(),
            &|m| keys.signing.sign(m),
        )
    }

    /// Queue each share's header, keys and hashes and send the last call
    /// of every writer in `which`, in parallel.
    async fn finish(
        &self,
        version: &SignedVersion,
        writers: &mut BTreeMap<usize, ServerWriter>,
        which: &[usize],
        provisional: &[u8],
        in_place: &Option<Range<u64>>,
    ) {
        let eof = version.offsets.eof;
        let mut chosen: Vec<&mut ServerWriter> = writers
            .iter_mut()
            .filter(|(s, _)| which.contains(s))
            .map(|(_, w)| w)
            .collect();
        join_all(chosen.iter_mut().map(|w| async move {
            let shnums: Vec<ShareNum> = w.shares.keys().copied().collect();
            for shnum in shnums {
                let extras = match in_place {
                    Some(touched) => version.share_update(usize::from(shnum), touched.clone()),
                    None => version.share_extras(usize::from(shnum)),
                };
                for (at, bytes) in extras {
                    w.push(shnum, at, bytes);
                }
            }
            w.held = false;
            w.flush(provisional, Some(eof)).await;
            w.settle().await;
        }))
        .await;
    }
}

/// The prefix a version's leaves are hashed under before it is signed:
/// version byte, sequence number, a zero root hash and (SDMF) the IV.
fn provisional_prefix(format: MutableFormat, seqnum: u64, iv: Option<[u8; 16]>) -> Vec<u8> {
    let mut provisional = vec![format.version_byte()];
    provisional.extend_from_slice(&seqnum.to_be_bytes());
    provisional.extend_from_slice(&[0u8; 32]);
    if let Some(iv) = iv {
        provisional.extend_from_slice(&iv);
    }
    provisional
}
