//! The backend: where shares live under the root, striped locks, and the
//! storage calls.
//!
//! File work goes through `tahoe_core::blocking`: data reads, writes and
//! listings `in_place`, everything that fsyncs or changes directories
//! (create, seal, leases, mutable writes) `on_pool`, since on a disk it can
//! take milliseconds and in place it would hold up the other requests of
//! the caller's connection, which are driven by the same task.

use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::blocking::{in_place, on_pool};
use tahoe_core::kinds::storage::{
    Lease, MAX_MUTABLE_SHARE, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend,
    StorageIndex, TestVector, WriteVector, apply_writes, constant_time_eq, length_after_writes,
    merge_lease, read_range, tests_hold,
};
use tahoe_core::{Error, Result};
use tokio::sync::Mutex;

use crate::NAME;
use crate::REWRITE_LIMIT;
use crate::files::{available_bytes, create_dirs, io_err, read_exactly, sync_dir};
use crate::journal::{JOURNAL_SUFFIX, apply_in_place, decode_journal, encode_journal};
use crate::leases::{LEASES, encode_leases, read_leases};
use crate::pending::{Pending, Reservation};

pub(crate) const MUTABLE_SUFFIX: &str = ".mutable";

/// Locks striping the mutable-share and lease updates.
pub(crate) const STRIPES: usize = 64;

pub(crate) struct Inner {
    root: PathBuf,
    stripes: Vec<Mutex<()>>,
    counter: AtomicU64,
    /// Bytes promised to pending shares (their full size, from `create`
    /// until sealed, aborted or dropped). Free space is what the filesystem
    /// reports minus this, so many uploads started at once cannot together
    /// promise more than the disk holds. Bytes a pending share has already
    /// written are counted twice (on disk and here) until it is sealed: the
    /// error is on the safe side, as in Tahoe-LAFS.
    promised: std::sync::Mutex<u64>,
}

/// The filesystem backend.
#[derive(Clone)]
pub struct FsBackend {
    inner: Arc<Inner>,
}

pub(crate) fn parse_share_name(name: &str) -> Option<(ShareNum, ShareKind)> {
    let (digits, kind) = match name.strip_suffix(MUTABLE_SUFFIX) {
        Some(d) => (d, ShareKind::Mutable),
        None => (name, ShareKind::Immutable),
    };
    let canonical = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse::<u8>().ok().map(|n| (n, kind))
}

/// The store's format: the layout under the root (fan-out, share and
/// journal names), the share containers (a share's bytes as the client
/// wrote them), the lease files (72-byte records). Written in the root's
/// `format` file when the store is first opened; a store without one was
/// made before the file existed and is format 1.
pub const FORMAT: u32 = 1;
const FORMAT_FILE: &str = "format";
const FORMAT_PREFIX: &str = "tahoe-rs fs storage format ";

/// Check the store's format file under `root`, writing it where there is
/// none: a newer format is refused by name (its shares or leases would be
/// misread).
fn check_format(root: &Path) -> Result<()> {
    let path = root.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        // Empty: its writer crashed before its bytes reached the disk
        // (written whole below, so never half): as if absent.
        Ok(text) if !text.trim().is_empty() => {
            let version = text
                .trim()
                .strip_prefix(FORMAT_PREFIX)
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "{} does not name a storage format ({:?})",
                        path.display(),
                        text.trim()
                    ))
                })?;
            if version > FORMAT {
                return Err(Error::invalid_input(format!(
                    "the storage in {} is format {version}, newer than this tahoe reads ({FORMAT}): run the newer tahoe",
                    root.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() != IoKind::NotFound => Err(io_err("read", &path, e)),
        _ => {
            create_dirs(root)?;
            let tmp = root.join("format.tmp");
            let write = || -> std::io::Result<()> {
                let mut f = File::create(&tmp)?;
                std::io::Write::write_all(&mut f, format!("{FORMAT_PREFIX}{FORMAT}\n").as_bytes())?;
                f.sync_all()?;
                fs::rename(&tmp, &path)
            };
            write().map_err(|e| io_err("write", &path, e))?;
            sync_dir(root)
        }
    }
}

impl FsBackend {
    /// Open a store rooted at `root` (made when missing), removing any
    /// unsealed leftovers of a previous run; a store of a newer format is
    /// refused.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        check_format(&root)?;
        let incoming = root.join("incoming");
        match fs::read_dir(&incoming) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let p = entry.path();
                    fs::remove_file(&p).map_err(|e| io_err("remove stale upload", &p, e))?;
                }
            }
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(io_err("read", &incoming, e)),
        }
        Ok(FsBackend {
            inner: Arc::new(Inner {
                root,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                counter: AtomicU64::new(0),
                promised: std::sync::Mutex::new(0),
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(crate) fn si_dir(&self, si: &StorageIndex) -> PathBuf {
        let name = si.to_base32();
        self.inner.root.join("shares").join(&name[..2]).join(name)
    }

    pub(crate) fn share_path(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
    ) -> PathBuf {
        let name = match kind {
            ShareKind::Immutable => shnum.to_string(),
            ShareKind::Mutable => format!("{shnum}{MUTABLE_SUFFIX}"),
        };
        self.si_dir(si).join(name)
    }

    pub(crate) fn journal_path(&self, si: &StorageIndex, shnum: ShareNum) -> PathBuf {
        self.si_dir(si)
            .join(format!("{shnum}{MUTABLE_SUFFIX}{JOURNAL_SUFFIX}"))
    }

    /// Finish an in-place update a crash interrupted (blocking; the
    /// caller holds the share's lock).
    pub(crate) fn replay_journal(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        let journal = self.journal_path(si, shnum);
        let data = match fs::read(&journal) {
            Ok(d) => d,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read", &journal, e)),
        };
        let (writes, new_length) = decode_journal(&journal, &data)?;
        let path = self.share_path(si, shnum, ShareKind::Mutable);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        apply_in_place(&file, &path, &writes, new_length)?;
        fs::remove_file(&journal).map_err(|e| io_err("remove", &journal, e))?;
        sync_dir(&self.si_dir(si))
    }

    /// Test and change an existing large share in place, behind a journal.
    pub(crate) fn update_in_place(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        file: &File,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        let path = self.share_path(si, shnum, ShareKind::Mutable);
        let size = file.metadata().map_err(|e| io_err("stat", &path, e))?.len();
        let mut all = true;
        for t in tests {
            let r = read_range(size, t.offset, t.length);
            let buf = read_exactly(file, &path, r)?;
            all &= constant_time_eq(&buf, &t.expected);
        }
        if !all {
            return Ok(false);
        }
        length_after_writes(size, writes, new_length)?;
        if writes.is_empty() && new_length.is_none() {
            return Ok(true);
        }
        let journal = self.journal_path(si, shnum);
        let tmp = self.temp_path();
        let staged = (|| {
            let f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
            f.write_all_at(&encode_journal(writes, new_length), 0)
                .map_err(|e| io_err("write", &tmp, e))?;
            f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
            fs::rename(&tmp, &journal).map_err(|e| io_err("rename onto", &journal, e))?;
            sync_dir(&self.si_dir(si))
        })();
        if let Err(e) = staged {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        apply_in_place(file, &path, writes, new_length)?;
        fs::remove_file(&journal).map_err(|e| io_err("remove", &journal, e))?;
        sync_dir(&self.si_dir(si))?;
        Ok(true)
    }

    pub(crate) fn temp_path(&self) -> PathBuf {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        self.inner
            .root
            .join("incoming")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// The index of the lock serializing updates of one share (or, with
    /// `None`, of the lease file) of `si`.
    pub(crate) fn stripe_index(si: &StorageIndex, shnum: Option<ShareNum>) -> usize {
        let mut h = DefaultHasher::new();
        (si, shnum).hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    pub(crate) fn stripe(&self, si: &StorageIndex, shnum: Option<ShareNum>) -> &Mutex<()> {
        &self.inner.stripes[Self::stripe_index(si, shnum)]
    }

    /// Write `data` to a temp file, fsync it, and rename it over `dest`.
    pub(crate) fn replace_file(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.temp_path();
        if let Some(parent) = tmp.parent() {
            create_dirs(parent)?;
        }
        let result = (|| {
            let f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
            f.write_all_at(data, 0)
                .map_err(|e| io_err("write", &tmp, e))?;
            f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
            if let Some(parent) = dest.parent() {
                create_dirs(parent)?;
            }
            fs::rename(&tmp, dest).map_err(|e| io_err("rename onto", dest, e))?;
            if let Some(parent) = dest.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Remove the storage index's directory once it holds no shares.
    pub(crate) fn prune(&self, si: &StorageIndex) -> Result<()> {
        let dir = self.si_dir(si);
        let any_share = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .any(|e| e.file_name().to_str().and_then(parse_share_name).is_some()),
            Err(_) => return Ok(()),
        };
        if !any_share {
            let _ = fs::remove_file(dir.join(LEASES));
            let _ = fs::remove_dir(&dir);
        }
        Ok(())
    }

    /// Free space as the filesystem reports it, less what pending shares
    /// have been promised.
    pub(crate) fn free_space(&self) -> Result<u64> {
        let promised = *self.promised()?;
        self.free_beyond(promised)
    }

    /// Free space on the filesystem beyond `promised` bytes.
    pub(crate) fn free_beyond(&self, promised: u64) -> Result<u64> {
        // The root may not exist yet: ask about its nearest existing ancestor.
        let existing = self
            .inner
            .root
            .ancestors()
            .find(|p| !p.as_os_str().is_empty() && p.exists())
            .unwrap_or(Path::new("."));
        Ok(available_bytes(existing)?.saturating_sub(promised))
    }

    pub(crate) fn promised(&self) -> Result<std::sync::MutexGuard<'_, u64>> {
        self.inner
            .promised
            .lock()
            .map_err(|_| Error::internal("fs backend reservation table poisoned"))
    }

    /// Promise `size` bytes to a new pending share if they fit, atomically
    /// with the check (two creates cannot both take the last free bytes).
    pub(crate) fn reserve(&self, size: u64) -> Result<Reservation> {
        let mut promised = self.promised()?;
        let free = self.free_beyond(*promised)?;
        if size > free {
            return Err(Error::no_space(format!(
                "share of {size} bytes does not fit: {free} bytes free under {} \
                 (after {} bytes promised to uploads in progress)",
                self.root().display(),
                *promised
            )));
        }
        *promised += size;
        Ok(Reservation {
            backend: self.clone(),
            size,
        })
    }
}

pub(crate) fn read_mutable(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::metadata(path) {
        Ok(m) if m.len() > MAX_MUTABLE_SHARE => {
            return Err(Error::corrupt(format!(
                "mutable share {} is {} bytes, over the {MAX_MUTABLE_SHARE} limit",
                path.display(),
                m.len()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("stat", path, e)),
    }
    match fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path, e)),
    }
}

#[async_trait]
impl StorageBackend for FsBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        let b = self.clone();
        let si = *si;
        let tmp = self.temp_path();
        let t = tmp.clone();
        let (file, reservation) = on_pool(move || {
            for kind in [ShareKind::Immutable, ShareKind::Mutable] {
                if b.share_path(&si, shnum, kind).exists() {
                    return Err(Error::already_exists(format!(
                        "share {shnum} of {si} exists"
                    )));
                }
            }
            let reservation = b.reserve(size)?;
            if let Some(parent) = t.parent() {
                create_dirs(parent)?;
            }
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&t)
                .map_err(|e| io_err("create", &t, e))?;
            Ok((file, reservation))
        })
        .await?;
        Ok(Box::new(Pending {
            backend: self.clone(),
            si,
            shnum,
            size,
            tmp,
            file: Some(Arc::new(file)),
            _reservation: reservation,
        }))
    }

    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        if kind == ShareKind::Mutable && self.journal_path(si, shnum).exists() {
            let _guard = self.stripe(si, Some(shnum)).lock().await;
            let b = self.clone();
            let si = *si;
            on_pool(move || b.replay_journal(&si, shnum)).await?;
        }
        let b = self.clone();
        let si = *si;
        in_place(move || {
            let path = b.share_path(&si, shnum, kind);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == IoKind::NotFound => {
                    return Err(Error::not_found(format!("no share {shnum} of {si}")));
                }
                Err(e) => return Err(io_err("open", &path, e)),
            };
            let size = file.metadata().map_err(|e| io_err("stat", &path, e))?.len();
            let r = read_range(size, offset, len);
            Ok(Bytes::from(read_exactly(&file, &path, r)?))
        })
        .await
    }

    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let dir = self.si_dir(si);
        in_place(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_err("list", &dir, e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_err("list", &dir, e))?;
                // Names that are not shares (leases, strays) are skipped.
                let Some((shnum, kind)) = entry.file_name().to_str().and_then(parse_share_name)
                else {
                    continue;
                };
                let meta = entry
                    .metadata()
                    .map_err(|e| io_err("stat", &entry.path(), e))?;
                out.push(ShareInfo {
                    shnum,
                    size: meta.len(),
                    kind,
                });
            }
            out.sort_by_key(|i| i.shnum);
            Ok(out)
        })
        .await
    }

    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        // The share's lock and the lease file's (pruning may remove it),
        // taken in index order, once if they are the same stripe.
        let mut idx = [
            Self::stripe_index(si, Some(shnum)),
            Self::stripe_index(si, None),
        ];
        idx.sort_unstable();
        let _first = self.inner.stripes[idx[0]].lock().await;
        let _second = if idx[1] != idx[0] {
            Some(self.inner.stripes[idx[1]].lock().await)
        } else {
            None
        };
        let b = self.clone();
        let si = *si;
        on_pool(move || {
            let _ = fs::remove_file(b.journal_path(&si, shnum));
            for kind in [ShareKind::Immutable, ShareKind::Mutable] {
                let path = b.share_path(&si, shnum, kind);
                match fs::remove_file(&path) {
                    Ok(()) => {
                        sync_dir(&b.si_dir(&si))?;
                        return b.prune(&si);
                    }
                    Err(e) if e.kind() == IoKind::NotFound => continue,
                    Err(e) => return Err(io_err("remove", &path, e)),
                }
            }
            Err(Error::not_found(format!("no share {shnum} of {si}")))
        })
        .await
    }

    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        let b = self.clone();
        on_pool(move || b.free_space().map(Some)).await
    }

    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        let _guard = self.stripe(si, Some(shnum)).lock().await;
        let b = self.clone();
        let si = *si;
        let (tests, writes) = (tests.to_vec(), writes.to_vec());
        on_pool(move || {
            if b.share_path(&si, shnum, ShareKind::Immutable).exists() {
                return Err(Error::already_exists(format!(
                    "share {shnum} of {si} is immutable"
                )));
            }
            b.replay_journal(&si, shnum)?;
            let path = b.share_path(&si, shnum, ShareKind::Mutable);
            match fs::metadata(&path) {
                Ok(m) if m.len() > REWRITE_LIMIT && m.len() <= MAX_MUTABLE_SHARE => {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_err("open", &path, e))?;
                    return b.update_in_place(&si, shnum, &file, &tests, &writes, new_length);
                }
                _ => {}
            }
            let current = read_mutable(&path)?;
            let exists = current.is_some();
            let mut data = current.unwrap_or_default();
            if !tests_hold(&data, &tests) {
                return Ok(false);
            }
            if !exists && writes.is_empty() && new_length.unwrap_or(0) == 0 {
                return Ok(true);
            }
            apply_writes(&mut data, &writes, new_length)?;
            b.replace_file(&path, &data)?;
            Ok(true)
        })
        .await
    }

    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        if self.list(si).await?.is_empty() {
            return Err(Error::not_found(format!("no shares of {si} to lease")));
        }
        let _guard = self.stripe(si, None).lock().await;
        let b = self.clone();
        let si = *si;
        let lease = lease.clone();
        on_pool(move || {
            let path = b.si_dir(&si).join(LEASES);
            let mut leases = read_leases(&path)?;
            if !merge_lease(&mut leases, &lease) {
                return Ok(());
            }
            b.replace_file(&path, &encode_leases(&leases))
        })
        .await
    }

    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let path = self.si_dir(si).join(LEASES);
        on_pool(move || read_leases(&path)).await
    }

    /// In the order of the directory names (prefix, then storage index in
    /// base32), so a page is two sorted directory reads at most per
    /// prefix. A directory whose last share is being deleted may be
    /// listed; names that are not storage indexes are skipped.
    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        let shares = self.inner.root.join("shares");
        let after = after.map(StorageIndex::to_base32);
        on_pool(move || {
            let mut out = Vec::new();
            for prefix in sorted_names(&shares)? {
                if after.as_ref().is_some_and(|a| prefix.as_str() < &a[..2]) {
                    continue;
                }
                for name in sorted_names(&shares.join(&prefix))? {
                    if after.as_ref().is_some_and(|a| name <= *a) || !name.starts_with(&prefix) {
                        continue;
                    }
                    let Ok(si) = name.parse::<StorageIndex>() else {
                        continue;
                    };
                    if si.to_base32() != name {
                        continue;
                    }
                    if out.len() == limit {
                        return Ok(Some(out));
                    }
                    out.push(si);
                }
            }
            Ok(Some(out))
        })
        .await
    }
}

/// The names in `dir`, sorted; none when it does not exist.
fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::REWRITE_LIMIT;
    use crate::journal::encode_journal;

    fn wv(offset: u64, data: &[u8]) -> WriteVector {
        WriteVector {
            offset,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn a_store_carries_its_format_and_a_newer_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        // Made before the file existed: format 1, and the file written.
        std::fs::create_dir_all(root.join("shares")).unwrap();
        FsBackend::open(&root).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("format")).unwrap(),
            "tahoe-rs fs storage format 1\n"
        );
        FsBackend::open(&root).unwrap();
        std::fs::write(root.join("format"), "tahoe-rs fs storage format 2\n").unwrap();
        let e = FsBackend::open(&root).err().unwrap().to_string();
        assert!(e.contains("format 2") && e.contains("(1)"), "{e}");
        std::fs::write(root.join("format"), "").unwrap();
        FsBackend::open(&root).unwrap();
        std::fs::write(root.join("format"), "something else\n").unwrap();
        let e = FsBackend::open(&root).err().unwrap().to_string();
        assert!(e.contains("does not name a storage format"), "{e}");
    }

    #[tokio::test]
    async fn large_mutable_shares_change_in_place_as_a_rewrite_would() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBackend::open(dir.path()).unwrap();
        let si = StorageIndex([3; 16]);
        let mut model = vec![7u8; (REWRITE_LIMIT + 5000) as usize];
        assert!(
            b.test_and_write(&si, 1, &[TestVector::absent()], &[wv(0, &model)], None)
                .await
                .unwrap()
        );
        let steps: Vec<(Vec<WriteVector>, Option<u64>)> = vec![
            (vec![wv(10, b"abc"), wv(REWRITE_LIMIT, b"tail")], None),
            (vec![wv(model.len() as u64 + 100, b"past the end")], None),
            (vec![wv(5, b"x")], Some(REWRITE_LIMIT + 3000)),
            (vec![], Some(REWRITE_LIMIT + 4000)),
        ];
        for (writes, new_length) in steps {
            let test = TestVector::equals(0, Bytes::copy_from_slice(&model[..16]));
            assert!(
                b.test_and_write(&si, 1, &[test], &writes, new_length)
                    .await
                    .unwrap()
            );
            apply_writes(&mut model, &writes, new_length).unwrap();
            let got = b
                .read(&si, 1, ShareKind::Mutable, 0, 1 << 30)
                .await
                .unwrap();
            assert!(got == model, "in-place update differs from a rewrite");
            assert!(!b.journal_path(&si, 1).exists());
        }
        // A failing test changes nothing.
        let wrong = TestVector::equals(0, Bytes::from_static(b"nope"));
        assert!(
            !b.test_and_write(&si, 1, &[wrong], &[wv(0, b"zzzz")], None)
                .await
                .unwrap()
        );
        assert!(
            b.read(&si, 1, ShareKind::Mutable, 0, 1 << 30)
                .await
                .unwrap()
                == model
        );
    }

    /// A backend holding one mutable share over [`REWRITE_LIMIT`] (share 0
    /// of `si`, all ones) with `journal` beside it, as a crash between the
    /// journal's rename and its application leaves them: the backend, its
    /// directory and the share's bytes before the journal.
    async fn crashed_with(
        si: &StorageIndex,
        journal: &[u8],
    ) -> (FsBackend, tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBackend::open(dir.path()).unwrap();
        let model = vec![1u8; (REWRITE_LIMIT + 10) as usize];
        assert!(
            b.test_and_write(si, 0, &[TestVector::absent()], &[wv(0, &model)], None)
                .await
                .unwrap()
        );
        std::fs::write(b.journal_path(si, 0), journal).unwrap();
        (b, dir, model)
    }

    /// The next read of share 0 of `si` gives `want`, and the journal is gone.
    async fn read_applies(b: &FsBackend, si: &StorageIndex, want: &[u8]) {
        let got = b.read(si, 0, ShareKind::Mutable, 0, 1 << 30).await.unwrap();
        assert!(got == want);
        assert!(!b.journal_path(si, 0).exists());
    }

    #[tokio::test]
    async fn a_journal_left_by_a_crash_is_applied_before_the_next_read() {
        let si = StorageIndex([4; 16]);
        let writes = vec![wv(3, b"journaled"), wv(REWRITE_LIMIT + 8, b"end")];
        let (b, _dir, mut model) = crashed_with(&si, &encode_journal(&writes, None)).await;
        apply_writes(&mut model, &writes, None).unwrap();
        read_applies(&b, &si, &model).await;
        // A damaged journal is an error, never applied half-way.
        let mut bad = encode_journal(&[wv(0, b"evil")], None);
        let n = bad.len();
        bad[n - 40] ^= 1;
        std::fs::write(b.journal_path(&si, 0), &bad).unwrap();
        let err = b.read(&si, 0, ShareKind::Mutable, 0, 16).await.unwrap_err();
        assert_eq!(err.kind(), tahoe_core::ErrorKind::Corrupt);
        // Journals are not shares.
        assert_eq!(b.list(&si).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_journal_of_the_first_format_is_still_applied() {
        use crate::journal::{JOURNAL_MAGIC_V1, JOURNAL_TAG};
        // A v1 journal, as the release before CRC-64 journals wrote it (a
        // crash before the upgrade): magic, no new length, one write at
        // offset 7 of "old format", the tagged SHA-256 of all that.
        let mut v1 = JOURNAL_MAGIC_V1.to_vec();
        v1.extend_from_slice(&u64::MAX.to_be_bytes());
        v1.extend_from_slice(&1u64.to_be_bytes());
        v1.extend_from_slice(&7u64.to_be_bytes());
        v1.extend_from_slice(&10u64.to_be_bytes());
        v1.extend_from_slice(b"old format");
        let h = tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, &v1);
        v1.extend_from_slice(&h);
        let si = StorageIndex([5; 16]);
        let (b, _dir, mut model) = crashed_with(&si, &v1).await;
        model[7..17].copy_from_slice(b"old format");
        read_applies(&b, &si, &model).await;
    }

    #[test]
    fn share_names_are_canonical() {
        assert_eq!(parse_share_name("0"), Some((0, ShareKind::Immutable)));
        assert_eq!(parse_share_name("255"), Some((255, ShareKind::Immutable)));
        assert_eq!(parse_share_name("7.mutable"), Some((7, ShareKind::Mutable)));
        for bad in [
            "256",
            "007",
            "-1",
            "",
            "1a",
            "leases",
            "1.mutable.tmp",
            "+1",
            " 1",
        ] {
            assert_eq!(parse_share_name(bad), None, "{bad:?}");
        }
    }
}
