//! The operations on mutable files: create, read, overwrite, write at an
//! offset, and modify (read, change, publish; again on conflict).
//!
//! Every write reads the servermap first and publishes sequence number + 1
//! through test-and-write ([`crate::client::mutable::publish`]). When another
//! writer got there first, the publish fails with `Conflict`; `overwrite`,
//! `write_at` and `modify` then read the servermap again and retry (after
//! a random pause, up to `MAX_ATTEMPTS` times), so concurrent writers
//! are serialized rather than lost, and no reader sees a mix: a reader only
//! ever decodes k shares of one signed version.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::client::mutable::DEFAULT_MDMF_SEGMENT_SIZE;
use crate::client::mutable::contents::Contents;
use crate::client::mutable::key_pool::KeyPool;
use crate::client::mutable::publish::{Plan, PublishReport, Publisher, SegmentSource, WriteKeys};
use crate::client::mutable::retrieve::{Counting, ReadReport, Retriever};
use crate::client::mutable::rsa::SigningKey;
use crate::client::mutable::servermap::ServerMap;
use crate::client::secrets::ClientSecret;
use crate::client::servers::ServerRef;
use crate::client::source::{BytesSource, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::format::cap::{SskReadCap, SskWriteCap};
use crate::format::chk::check_chk_cipher;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::layout::{Geometry, Prefix};
use crate::format::ssk::{MAX_SDMF_SIZE, MUTABLE_CODEC};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::CodecParams;
use crate::kinds::codec::CodecProvider;

/// A change `modify` applies: the current contents in, the new contents
/// out (`None`: leave the file as it is).
type Change<'a> = dyn Fn(&[u8]) -> Result<Option<Vec<u8>>> + Send + Sync + 'a;

/// How many times a write is tried when other writers keep winning
/// (enough for a few dozen writers changing one file at once: each round
/// lets at least one through).
const MAX_ATTEMPTS: u32 = 24;

/// A client's view of the grid for mutable files.
#[derive(Clone)]
pub struct MutableClient {
    /// The storage servers.
    pub servers: Vec<ServerRef>,
    /// Builds codecs (only `crs`, zfec's code, is used).
    pub codecs: Arc<CodecProvider>,
    /// AES-128-CTR.
    pub cipher: Arc<dyn Cipher>,
    /// This client's secret (lease secrets).
    pub secret: ClientSecret,
    /// Signing keys made ahead of time.
    pub keys: KeyPool,
    /// Shares needed, for new files.
    pub k: u16,
    /// Shares made, for new files.
    pub n: u16,
    /// Distinct servers a new version must reach (capped at the servers
    /// there are).
    pub happy: u16,
    /// Largest MDMF segment (rounded up to a multiple of k).
    pub mdmf_segment_size: u64,
    /// The plaintext of versions `modify` just read or wrote, shared by
    /// the client's clones.
    pub contents: Arc<Contents>,
}

/// Segment plaintext read from a [`Source`].
fn source_segments(geo: Geometry, source: Arc<dyn Source>) -> SegmentSource {
    Arc::new(move |seg| {
        let mut buf = vec![0u8; geo.segment_len(seg) as usize];
        source.read_at(seg * geo.segment_size, &mut buf)?;
        Ok(buf)
    })
}

impl MutableClient {
    /// A client with Tahoe's defaults for segment size.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        servers: Vec<ServerRef>,
        codecs: Arc<CodecProvider>,
        cipher: Arc<dyn Cipher>,
        secret: ClientSecret,
        keys: KeyPool,
        k: u16,
        happy: u16,
        n: u16,
    ) -> Result<Self> {
        check_chk_cipher(cipher.as_ref()).map_err(|_| {
            Error::config_invalid(format!(
                "mutable files are encrypted with AES-128-CTR as Tahoe-LAFS's format requires, \
                 but cipher {} was given",
                cipher.name()
            ))
        })?;
        Ok(MutableClient {
            servers,
            codecs,
            cipher,
            secret,
            keys,
            k,
            n,
            happy,
            mdmf_segment_size: DEFAULT_MDMF_SEGMENT_SIZE,
            contents: Arc::default(),
        })
    }

    fn retriever(&self) -> Retriever {
        Retriever {
            codecs: self.codecs.clone(),
            cipher: self.cipher.clone(),
        }
    }

    fn publisher(&self, k: u8, n: u8) -> Result<Publisher> {
        let params = CodecParams::new(u16::from(k), u16::from(n))?;
        Ok(Publisher {
            codec: (self.codecs)(MUTABLE_CODEC, params)?,
            cipher: self.cipher.clone(),
            secret: self.secret.clone(),
            happy: self.happy,
        })
    }

    /// The plan for publishing `source` whole as version `seqnum`.
    fn full_plan(
        &self,
        format: MutableFormat,
        k: u8,
        source: Arc<dyn Source>,
        seqnum: u64,
        read_key: [u8; 16],
    ) -> Result<Plan> {
        let len = source.size();
        let k64 = u64::from(k);
        let segment_size = match format {
            MutableFormat::Sdmf => {
                if len > MAX_SDMF_SIZE {
                    return Err(Error::invalid_input(format!(
                        "an SDMF file holds at most {MAX_SDMF_SIZE} bytes (it is one segment, \
                         held whole in memory); this one is {len}: use MDMF"
                    )));
                }
                len.div_ceil(k64) * k64
            }
            MutableFormat::Mdmf => {
                // Within what readers accept, a multiple of k.
                let max = crate::format::ssk::layout::MAX_MDMF_SEGMENT_SIZE - k64 + 1;
                self.mdmf_segment_size.clamp(1, max).div_ceil(k64) * k64
            }
        };
        let geo = Geometry::new(format, k64, segment_size, len);
        let salts = random_salts(match format {
            MutableFormat::Sdmf => 1,
            MutableFormat::Mdmf => geo.segments as usize,
        })?;
        Ok(Plan {
            geo,
            segments: 0..geo.segments,
            salts,
            source: source_segments(geo, source),
            kept_leaves: None,
            targets: None,
            in_place: false,
            seqnum,
            read_key,
        })
    }

    /// Create a mutable file holding `source`; returns its write cap.
    pub async fn create(
        &self,
        format: MutableFormat,
        source: Arc<dyn Source>,
    ) -> Result<SskWriteCap> {
        let key = self.keys.take().await?;
        self.create_with_key(key, format, source).await
    }

    /// Create a mutable file signed by `key`.
    pub async fn create_with_key(
        &self,
        key: SigningKey,
        format: MutableFormat,
        source: Arc<dyn Source>,
    ) -> Result<SskWriteCap> {
        let keys = WriteKeys::new(key, format, self.cipher.as_ref())?;
        let (k, n) = (self.k as u8, self.n as u8);
        // A fresh key has no shares anywhere: no need to ask. Every share
        // is written only where none exists, so a key used before shows up
        // as a conflict.
        let map = ServerMap::empty(&self.servers, keys.cap.storage_index());
        let plan = self.full_plan(format, k, source, 1, keys.read_key)?;
        match self.publisher(k, n)?.publish(&map, &keys, plan).await {
            Ok(_) => Ok(keys.cap),
            Err(e) if e.kind() == ErrorKind::Conflict => Err(Error::already_exists(format!(
                "mutable file {} already has shares; refusing to create it again",
                map.storage_index
            ))),
            Err(e) => Err(e),
        }
    }

    /// The servermap of a file.
    pub async fn servermap_of(&self, cap: &SskReadCap) -> ServerMap {
        ServerMap::update(
            &self.servers,
            cap.storage_index(),
            &cap.fingerprint,
            cap.format,
        )
        .await
    }

    /// The servermap a writer works from: one with a version to replace
    /// (or no shares at all). A map with no recoverable version because a
    /// writer is publishing as it is made (some shares already of the next
    /// version, the rest still of the last) is a `Conflict` to retry, as
    /// [`MutableClient::raced`] tells; a file that stays unrecoverable is
    /// the error it is.
    async fn writers_map(&self, cap: &SskWriteCap) -> Result<ServerMap> {
        let read_cap = cap.read_cap();
        let map = self.servermap_of(&read_cap).await;
        if let Err(e) = map.best() {
            return Err(self.raced(&read_cap, &map, e).await);
        }
        Ok(map)
    }

    /// Write bytes `range` of the newest version to `out`. A read that a
    /// writer raced (the shares changed between the servermap and the
    /// blocks) is tried again, while nothing has reached `out`.
    pub async fn read(
        &self,
        cap: &SskReadCap,
        range: Range<u64>,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ReadReport> {
        let mut tries = 0;
        loop {
            tries += 1;
            let map = self.servermap_of(cap).await;
            let mut counting = Counting {
                inner: &mut *out,
                written: 0,
            };
            let result = self
                .retriever()
                .read(&map, &cap.read_key, range.clone(), &mut counting)
                .await;
            match result {
                Err(e) if counting.written == 0 && tries < MAX_ATTEMPTS => {
                    let e = self.raced(cap, &map, e).await;
                    if e.kind() != ErrorKind::Conflict {
                        return Err(e);
                    }
                    backoff("read", tries, &e).await;
                }
                other => return other,
            }
        }
    }

    /// `err`, a failed read of what `map` saw, as a `Conflict` when the
    /// file has changed since `map` was made (a writer replaced the shares
    /// while they were read), else as it is.
    async fn raced(&self, cap: &SskReadCap, map: &ServerMap, err: Error) -> Error {
        if !matches!(err.kind(), ErrorKind::NotEnoughShares | ErrorKind::Corrupt) {
            return err;
        }
        if map.changed_in(&self.servermap_of(cap).await) {
            return Error::conflict(format!("the file changed while it was read ({err})"));
        }
        err
    }

    /// The newest version's size and prefix.
    pub async fn stat(&self, cap: &SskReadCap) -> Result<Prefix> {
        let map = self.servermap_of(cap).await;
        match map.best()? {
            Some((p, _)) => Ok(p.clone()),
            None => Err(Error::not_found(format!(
                "no server holds a share of mutable file {}",
                map.storage_index
            ))),
        }
    }

    /// The write keys of an existing file, from the encrypted private key
    /// in one of its shares. Where the key lies past what the servermap
    /// read, it is read at the offsets `map` saw; a writer that replaced
    /// the shares since (another size, so another layout) leaves garbage
    /// there, and that is a `Conflict` to retry, not a corrupt file.
    async fn write_keys(&self, map: &ServerMap, cap: &SskWriteCap) -> Result<WriteKeys> {
        let mut last = None;
        for shares in map.versions.values().rev() {
            for e in shares {
                let r = &e.head.offsets.enc_privkey;
                let bytes = if (e.data.len() as u64) >= r.end {
                    e.data.slice(r.start as usize..r.end as usize)
                } else {
                    match map
                        .service(e.server)
                        .slot_readv(
                            map.storage_index,
                            vec![e.shnum],
                            vec![(r.start, r.end - r.start)],
                        )
                        .await
                    {
                        Ok(mut m) => m
                            .remove(&e.shnum)
                            .and_then(|mut v| v.pop())
                            .unwrap_or_default(),
                        Err(err) => {
                            last = Some(err);
                            continue;
                        }
                    }
                };
                match WriteKeys::from_share(cap, &bytes, self.cipher.as_ref()) {
                    Ok(k) => return Ok(k),
                    Err(err) => last = Some(err),
                }
            }
        }
        let err = last.unwrap_or_else(|| {
            Error::not_found(format!(
                "no share of mutable file {} was found: {}",
                map.storage_index,
                map.describe()
            ))
        });
        Err(self.raced(&cap.read_cap(), map, err).await)
    }

    /// Retry `attempt` while it fails with `Conflict`.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(e) if e.kind() == ErrorKind::Conflict && tries < MAX_ATTEMPTS => {
                    backoff(what, tries, &e).await;
                }
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    return Err(e.context(format!("{what}: gave up after {tries} attempts")));
                }
                other => return other,
            }
        }
    }

    /// Replace the contents with `source` (retrying on conflict: the last
    /// writer wins, whole).
    pub async fn overwrite(
        &self,
        cap: &SskWriteCap,
        source: Arc<dyn Source>,
    ) -> Result<PublishReport> {
        self.retrying("overwrite", || async {
            let map = self.writers_map(cap).await?;
            let keys = self.write_keys(&map, cap).await?;
            self.publish_next(cap, &map, &keys, source.clone()).await
        })
        .await
    }

    /// Repair: publish the newest recoverable version's contents again as
    /// the next version, with every share placed (the publisher puts the
    /// missing ones on servers that hold none). The contents are spooled
    /// to a private file in `spool_dir`. Once, never retried: when a writer
    /// changed the file since its servermap was made, the publish's test
    /// of every share fails and nothing is replaced, so an older version
    /// never goes over a newer one; a newer version that cannot be read
    /// (held by most servers) fails the repair rather than be rolled back.
    pub async fn republish(
        &self,
        cap: &SskWriteCap,
        spool_dir: &std::path::Path,
    ) -> Result<PublishReport> {
        let read_cap = cap.read_cap();
        let map = self.servermap_of(&read_cap).await;
        if map.best()?.is_none() {
            return Err(Error::not_enough_shares(
                "no version of the file is on the grid",
            ));
        }
        let spool = tempfile::NamedTempFile::new_in(spool_dir)
            .map_err(|e| Error::from(e).context("the repair's spool file"))?;
        let mut out = tokio::fs::File::from_std(
            spool
                .reopen()
                .map_err(|e| Error::from(e).context("the repair's spool file"))?,
        );
        self.retriever()
            .read(&map, &read_cap.read_key, 0..u64::MAX, &mut out)
            .await?;
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        drop(out);
        let source: Arc<dyn Source> =
            Arc::new(crate::client::source::FileSource::open(spool.path())?);
        let keys = self.write_keys(&map, cap).await?;
        self.publish_next(cap, &map, &keys, source).await
    }

    /// Publish `source` as the version after every one `map` saw, in the
    /// file's shape, testing each share against `map`.
    async fn publish_next(
        &self,
        cap: &SskWriteCap,
        map: &ServerMap,
        keys: &WriteKeys,
        source: Arc<dyn Source>,
    ) -> Result<PublishReport> {
        let (k, n) = self.shape(map)?;
        let plan = self.full_plan(
            cap.format,
            k,
            source,
            map.highest_seqnum() + 1,
            keys.read_key,
        )?;
        self.publisher(k, n)?.publish(map, keys, plan).await
    }

    /// The k and n of the file: its newest version's, or the client's.
    fn shape(&self, map: &ServerMap) -> Result<(u8, u8)> {
        Ok(match map.best()? {
            Some((p, _)) => (p.k, p.n),
            None => (self.k as u8, self.n as u8),
        })
    }

    /// Read the whole newest version, apply `change` and publish the
    /// result; on conflict, again from the start. `change` returning
    /// `None` leaves the file as it is. The newest version is found in a
    /// fresh servermap each time; its contents are read unless this client
    /// has just read or written that very version ([`Contents`]).
    pub async fn modify(
        &self,
        cap: &SskWriteCap,
        change: &Change<'_>,
    ) -> Result<Option<PublishReport>> {
        let si = cap.read_cap().storage_index();
        self.retrying("modify", || async {
            let map = self.writers_map(cap).await?;
            let keys = self.write_keys(&map, cap).await?;
            let newest = map.best()?.map(|(prefix, _)| prefix.clone());
            let old = match &newest {
                None => Bytes::new(),
                Some(version) => match self.contents.get(&si, version) {
                    Some(known) => known,
                    None => {
                        let mut old = Vec::new();
                        let read = self
                            .retriever()
                            .read(&map, &keys.read_key, 0..u64::MAX, &mut old)
                            .await;
                        if let Err(e) = read {
                            return Err(self.raced(&cap.read_cap(), &map, e).await);
                        }
                        let old = Bytes::from(old);
                        self.contents.put(si, version.clone(), old.clone());
                        old
                    }
                },
            };
            let Some(new) = change(&old)? else {
                return Ok(None);
            };
            let new = Bytes::from(new);
            let source: Arc<dyn Source> = Arc::new(BytesSource(new.clone()));
            let report = self.publish_next(cap, &map, &keys, source).await?;
            self.contents.put(si, report.prefix.clone(), new);
            Ok(Some(report))
        })
        .await
    }

    /// Write `data` at `offset` (extending the file, with zeros if
    /// `offset` is past its end). MDMF re-encodes and writes only the
    /// segments the write touches; SDMF (one segment) is rewritten whole.
    pub async fn write_at(
        &self,
        cap: &SskWriteCap,
        offset: u64,
        data: Bytes,
    ) -> Result<PublishReport> {
        if cap.format == MutableFormat::Sdmf {
            let patch = move |old: &[u8]| -> Result<Option<Vec<u8>>> {
                Ok(Some(patched(old, offset, &data)))
            };
            return self
                .modify(cap, &patch)
                .await?
                .ok_or_else(|| Error::internal("the write changed nothing".to_string()));
        }
        self.retrying("write", || async {
            let map = self.writers_map(cap).await?;
            let keys = self.write_keys(&map, cap).await?;
            self.update_mdmf(&map, &keys, offset, &data).await
        })
        .await
    }

    /// One attempt of an MDMF write at an offset.
    async fn update_mdmf(
        &self,
        map: &ServerMap,
        keys: &WriteKeys,
        offset: u64,
        data: &Bytes,
    ) -> Result<PublishReport> {
        let Some((prefix, entries)) = map.best()? else {
            return Err(Error::not_found(format!(
                "no server holds a share of mutable file {}",
                map.storage_index
            )));
        };
        let old = prefix.geometry();
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::invalid_input("write past 2^64 bytes".to_string()))?;
        let new_len = old.data_length.max(end);
        let geo = Geometry::new(MutableFormat::Mdmf, old.k, old.segment_size, new_len);
        let seg = old.segment_size;
        let first = offset.min(old.data_length) / seg;
        let last = if new_len > old.data_length {
            geo.segments
        } else {
            geo.segments_for(offset, end).end.max(first)
        };
        let touched = first..last;
        let retriever = self.retriever();
        // Every share's leaves, so each tree's root can be recomputed; a
        // share we cannot read the tree of cannot be updated in place, so
        // then the whole file is rewritten instead.
        let trees = retriever.block_trees(map, prefix, entries).await?;
        let mut kept = BTreeMap::new();
        for (shnum, nodes) in trees {
            let first_leaf = nodes.len() / 2;
            kept.entry(shnum)
                .or_insert_with(|| nodes[first_leaf..first_leaf + old.segments as usize].to_vec());
        }
        let targets: Vec<(usize, crate::kinds::storage::ShareNum)> =
            entries.iter().map(|e| (e.server, e.shnum)).collect();
        if kept.len() < usize::from(prefix.n) {
            let mut whole = Vec::new();
            retriever
                .read(map, &keys.read_key, 0..u64::MAX, &mut whole)
                .await?;
            let source: Arc<dyn Source> =
                Arc::new(BytesSource(Bytes::from(patched(&whole, offset, data))));
            let plan = self.full_plan(
                MutableFormat::Mdmf,
                prefix.k,
                source,
                map.highest_seqnum() + 1,
                keys.read_key,
            )?;
            return self
                .publisher(prefix.k, prefix.n)?
                .publish(map, keys, plan)
                .await;
        }
        // The touched segments' old plaintext, patched.
        let base = touched.start * seg;
        let old_segs = touched.start..touched.end.min(old.segments);
        let mut buf = retriever
            .segments(map, prefix, entries, &keys.read_key, old_segs)
            .await?
            .concat();
        let span_end = (touched.end * seg).min(new_len);
        buf.resize((span_end - base) as usize, 0);
        let at = (offset - base) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        let buf = Bytes::from(buf);
        let source: SegmentSource = Arc::new(move |s| {
            let from = ((s * seg) - base) as usize;
            let len = geo.segment_len(s) as usize;
            Ok(buf[from..from + len].to_vec())
        });
        let plan = Plan {
            geo,
            segments: touched.clone(),
            salts: random_salts((touched.end - touched.start) as usize)?,
            source,
            kept_leaves: Some(kept),
            targets: Some(targets),
            in_place: geo.segments == old.segments,
            seqnum: map.highest_seqnum() + 1,
            read_key: keys.read_key,
        };
        self.publisher(prefix.k, prefix.n)?
            .publish(map, keys, plan)
            .await
    }
}

/// Wait before trying again after `tries` collisions: exponential backoff
/// with full jitter, so writers that collided spread out more each time.
async fn backoff(what: &str, tries: u32, e: &Error) {
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    let ceiling = (10u64 << tries.min(7)).min(1000);
    let ms = u64::from(u32::from_le_bytes(r)) % (ceiling + 1);
    tracing::debug!("{what}: another writer won ({e}); retrying in {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// `old` with `data` written at `offset` (zeros fill any gap).
fn patched(old: &[u8], offset: u64, data: &[u8]) -> Vec<u8> {
    let offset = offset as usize;
    let mut out = old.to_vec();
    if out.len() < offset + data.len() {
        out.resize(offset + data.len(), 0);
    }
    out[offset..offset + data.len()].copy_from_slice(data);
    out
}
/// Fresh random salts.
fn random_salts(count: usize) -> Result<Vec<[u8; crate::format::ssk::layout::SALT_LEN]>> {
    let mut bytes = vec![0u8; count * crate::format::ssk::layout::SALT_LEN];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("random: {e}")))?;
    Ok(bytes
        .chunks_exact(crate::format::ssk::layout::SALT_LEN)
        .map(|c| {
            let mut s = [0u8; crate::format::ssk::layout::SALT_LEN];
            s.copy_from_slice(c);
            s
        })
        .collect())
}
