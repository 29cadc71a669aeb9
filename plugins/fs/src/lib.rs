//! `fs`: shares as files in a local directory.
//!
//! Layout under the configured root (default `BASEDIR/storage`):
//!
//! ```text
//! shares/<2-char prefix>/<storage index>/<shnum>          sealed immutable share
//! shares/<2-char prefix>/<storage index>/<shnum>.mutable  mutable share
//! shares/<2-char prefix>/<storage index>/<shnum>.mutable.journal
//!                                                 an update being applied
//! shares/<2-char prefix>/<storage index>/leases           lease records
//! incoming/<unique name>                                  data not yet sealed
//! ```
//!
//! Storage indexes are written in base32 and the prefix is its first two
//! characters (Tahoe's fan-out, 1024 directories). Every path component
//! comes from a typed [`StorageIndex`] or share number or from this code,
//! never from a string a peer sent, so no input can walk out of the root.
//!
//! Crash safety comes from never changing a visible file in place:
//! - an immutable share is written to `incoming/`, fsynced, then hard-linked
//!   to its final name (which fails if the name exists, so the first seal
//!   wins) and the directory fsynced;
//! - the lease file, and a mutable share of up to [`REWRITE_LIMIT`] bytes,
//!   is rewritten whole into `incoming/`, fsynced and renamed over the old
//!   one;
//! - a larger mutable share is changed in place behind a redo journal: the
//!   writes go first to `<shnum>.mutable.journal` (written to `incoming/`,
//!   fsynced, renamed into place), then into the share, which is fsynced
//!   before the journal is removed. A journal left by a crash is applied
//!   again (writes are idempotent) before the share is next read or
//!   written. So a large share written piece by piece (an MDMF publish)
//!   costs each call its own bytes, not the whole share's.
//!
//! A crash leaves at most files in `incoming/`, which are never listed and
//! are removed when the backend is next opened. One process uses a root at a
//! time (the node's pid file sees to that). Mutable shares are held in
//! memory while rewritten, so they are limited to
//! [`tahoe_core::kinds::storage::MAX_MUTABLE_SHARE`].
//!
//! All file I/O runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tahoe_core::kinds::storage::{
    Lease, MAX_MUTABLE_SHARE, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend,
    StorageIndex, TestVector, WriteVector, apply_writes, check_pending_write, constant_time_eq,
    length_after_writes, merge_lease, read_range, tests_hold,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};
use tokio::sync::Mutex;

/// The registry name.
pub const NAME: &str = "fs";

/// Mutable shares up to this size are rewritten whole on every change
/// (two fsyncs); larger ones are changed in place behind a journal.
pub const REWRITE_LIMIT: u64 = 1 << 20;

const JOURNAL_SUFFIX: &str = ".journal";
const JOURNAL_MAGIC: &[u8] = b"tahoe-rs fs journal v1\n";
const JOURNAL_TAG: &[u8] = b"tahoe-rs fs journal checksum v1";

/// A journal: magic, new length (`u64::MAX`: none), count, then each
/// write's offset, length and bytes, and a hash of all of it.
fn encode_journal(writes: &[WriteVector], new_length: Option<u64>) -> Vec<u8> {
    let mut out = JOURNAL_MAGIC.to_vec();
    out.extend_from_slice(&new_length.unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(&(writes.len() as u64).to_be_bytes());
    for w in writes {
        out.extend_from_slice(&w.offset.to_be_bytes());
        out.extend_from_slice(&(w.data.len() as u64).to_be_bytes());
        out.extend_from_slice(&w.data);
    }
    let h = tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, &out);
    out.extend_from_slice(&h);
    out
}

type Journal = (Vec<WriteVector>, Option<u64>);

fn decode_journal(path: &Path, data: &[u8]) -> Result<Journal> {
    let bad = |why: &str| Error::corrupt(format!("journal {}: {why}", path.display()));
    if data.len() < JOURNAL_MAGIC.len() + 16 + 32 || !data.starts_with(JOURNAL_MAGIC) {
        return Err(bad("not a journal"));
    }
    let (body, hash) = data.split_at(data.len() - 32);
    if tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, body)[..] != *hash {
        return Err(bad("checksum does not match"));
    }
    let mut at = JOURNAL_MAGIC.len();
    let u64_at = |at: &mut usize| -> Result<u64> {
        let b = body.get(*at..*at + 8).ok_or_else(|| bad("truncated"))?;
        *at += 8;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| bad("truncated"))?,
        ))
    };
    let new_length = Some(u64_at(&mut at)?).filter(|&n| n != u64::MAX);
    let count = u64_at(&mut at)?;
    let mut writes = Vec::new();
    for _ in 0..count {
        let offset = u64_at(&mut at)?;
        let len = u64_at(&mut at)? as usize;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| bad("truncated"))?;
        writes.push(WriteVector {
            offset,
            data: Bytes::copy_from_slice(&body[at..end]),
        });
        at = end;
    }
    if at != body.len() {
        return Err(bad("trailing bytes"));
    }
    length_after_writes(0, &writes, new_length)?;
    Ok((writes, new_length))
}

/// Apply writes to an open share file and fsync it.
fn apply_in_place(
    file: &File,
    path: &Path,
    writes: &[WriteVector],
    new_length: Option<u64>,
) -> Result<()> {
    for w in writes {
        file.write_all_at(&w.data, w.offset)
            .map_err(|e| io_err("write", path, e))?;
    }
    if let Some(n) = new_length {
        file.set_len(n)
            .map_err(|e| io_err("set length of", path, e))?;
    }
    file.sync_all().map_err(|e| io_err("fsync", path, e))
}

/// `[storage.fs]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FsConfig {
    /// The root directory; relative paths are under the node's base directory.
    pub path: PathBuf,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            path: PathBuf::from("storage"),
        }
    }
}

const MUTABLE_SUFFIX: &str = ".mutable";
const LEASES: &str = "leases";
const LEASE_RECORD: usize = 32 + 32 + 8;
/// Locks striping the mutable-share and lease updates.
const STRIPES: usize = 64;

struct Inner {
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

// File work goes through `tahoe_core::blocking`: data reads, writes and
// listings `in_place`, everything that fsyncs or changes directories
// (create, seal, leases, mutable writes) `on_pool`, since on a disk it can
// take milliseconds and in place it would hold up the other requests of
// the caller's connection, which are driven by the same task.
use tahoe_core::blocking::{in_place, on_pool};

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::from(e).context(format!("{what} {}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", dir, e))
}

/// Create `dir` and any missing parents, fsyncing each parent that gained
/// an entry so the new directories survive a crash.
fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == IoKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("create directory", dir, e)),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn parse_share_name(name: &str) -> Option<(ShareNum, ShareKind)> {
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

impl FsBackend {
    /// Open (or prepare to create) a store rooted at `root`, removing any
    /// unsealed leftovers of a previous run.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
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

    fn si_dir(&self, si: &StorageIndex) -> PathBuf {
        let name = si.to_base32();
        self.inner.root.join("shares").join(&name[..2]).join(name)
    }

    fn share_path(&self, si: &StorageIndex, shnum: ShareNum, kind: ShareKind) -> PathBuf {
        let name = match kind {
            ShareKind::Immutable => shnum.to_string(),
            ShareKind::Mutable => format!("{shnum}{MUTABLE_SUFFIX}"),
        };
        self.si_dir(si).join(name)
    }

    fn journal_path(&self, si: &StorageIndex, shnum: ShareNum) -> PathBuf {
        self.si_dir(si)
            .join(format!("{shnum}{MUTABLE_SUFFIX}{JOURNAL_SUFFIX}"))
    }

    /// Finish an in-place update a crash interrupted (blocking; the
    /// caller holds the share's lock).
    fn replay_journal(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
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
    fn update_in_place(
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
            let mut buf = vec![0u8; (r.end - r.start) as usize];
            file.read_exact_at(&mut buf, r.start)
                .map_err(|e| io_err("read", &path, e))?;
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

    fn temp_path(&self) -> PathBuf {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        self.inner
            .root
            .join("incoming")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// The index of the lock serializing updates of one share (or, with
    /// `None`, of the lease file) of `si`.
    fn stripe_index(si: &StorageIndex, shnum: Option<ShareNum>) -> usize {
        let mut h = DefaultHasher::new();
        (si, shnum).hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    fn stripe(&self, si: &StorageIndex, shnum: Option<ShareNum>) -> &Mutex<()> {
        &self.inner.stripes[Self::stripe_index(si, shnum)]
    }

    /// Write `data` to a temp file, fsync it, and rename it over `dest`.
    fn replace_file(&self, dest: &Path, data: &[u8]) -> Result<()> {
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
    fn prune(&self, si: &StorageIndex) -> Result<()> {
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
    fn free_space(&self) -> Result<u64> {
        let promised = *self.promised()?;
        self.free_beyond(promised)
    }

    /// Free space on the filesystem beyond `promised` bytes.
    fn free_beyond(&self, promised: u64) -> Result<u64> {
        // The root may not exist yet: ask about its nearest existing ancestor.
        let existing = self
            .inner
            .root
            .ancestors()
            .find(|p| !p.as_os_str().is_empty() && p.exists())
            .unwrap_or(Path::new("."));
        Ok(available_bytes(existing)?.saturating_sub(promised))
    }

    fn promised(&self) -> Result<std::sync::MutexGuard<'_, u64>> {
        self.inner
            .promised
            .lock()
            .map_err(|_| Error::internal("fs backend reservation table poisoned"))
    }

    /// Promise `size` bytes to a new pending share if they fit, atomically
    /// with the check (two creates cannot both take the last free bytes).
    fn reserve(&self, size: u64) -> Result<Reservation> {
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

/// Bytes available to unprivileged users on the filesystem holding `path`.
#[allow(unsafe_code)]
fn available_bytes(path: &Path) -> Result<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid_input("path contains a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to
    // writable memory of the right type; statvfs initializes it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io_err("statvfs", path, std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so `st` is initialized.
    let st = unsafe { st.assume_init() };
    // The field types are 32-bit on some targets.
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes promised to one pending share, given back when it is dropped
/// (sealed, aborted or abandoned alike).
struct Reservation {
    backend: FsBackend,
    size: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut promised) = self.backend.promised() {
            *promised = promised.saturating_sub(self.size);
        }
    }
}

struct Pending {
    backend: FsBackend,
    si: StorageIndex,
    shnum: ShareNum,
    size: u64,
    tmp: PathBuf,
    file: Option<Arc<File>>,
    _reservation: Reservation,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[async_trait]
impl PendingShare for Pending {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        check_pending_write(self.size, offset, data.len())?;
        let file = self
            .file
            .clone()
            .ok_or_else(|| Error::internal("write after seal"))?;
        let tmp = self.tmp.clone();
        in_place(move || {
            file.write_all_at(&data, offset)
                .map_err(|e| io_err("write", &tmp, e))
        })
        .await
    }

    async fn seal(mut self: Box<Self>) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::internal("sealed twice"))?;
        let backend = self.backend.clone();
        let (si, shnum, size, tmp) = (self.si, self.shnum, self.size, self.tmp.clone());
        let _guard = backend.stripe(&si, Some(shnum)).lock().await;
        let b = backend.clone();
        on_pool(move || {
            let result = (|| {
                file.set_len(size)
                    .map_err(|e| io_err("set length of", &tmp, e))?;
                file.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
                drop(file);
                if b.share_path(&si, shnum, ShareKind::Mutable).exists() {
                    return Err(Error::already_exists(format!(
                        "share {shnum} of {si} is a mutable share"
                    )));
                }
                let dir = b.si_dir(&si);
                create_dirs(&dir)?;
                let dest = b.share_path(&si, shnum, ShareKind::Immutable);
                // link(2) refuses an existing name: the first seal wins.
                match fs::hard_link(&tmp, &dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == IoKind::AlreadyExists => {
                        return Err(Error::already_exists(format!(
                            "share {shnum} of {si} was sealed by another writer"
                        )));
                    }
                    Err(e) => return Err(io_err("link", &dest, e)),
                }
                sync_dir(&dir)
            })();
            let _ = fs::remove_file(&tmp);
            result
        })
        .await
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        if self.file.take().is_some() {
            let tmp = self.tmp.clone();
            on_pool(move || match fs::remove_file(&tmp) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == IoKind::NotFound => Ok(()),
                Err(e) => Err(io_err("remove", &tmp, e)),
            })
            .await?;
        }
        Ok(())
    }
}

fn encode_leases(leases: &[Lease]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leases.len() * LEASE_RECORD);
    for l in leases {
        out.extend_from_slice(&l.renew_secret);
        out.extend_from_slice(&l.cancel_secret);
        out.extend_from_slice(&l.expires_at.to_be_bytes());
    }
    out
}

fn decode_leases(path: &Path, data: &[u8]) -> Result<Vec<Lease>> {
    if !data.len().is_multiple_of(LEASE_RECORD) {
        return Err(Error::corrupt(format!(
            "lease file {} has {} bytes, not a multiple of {LEASE_RECORD}",
            path.display(),
            data.len()
        )));
    }
    Ok(data
        .chunks_exact(LEASE_RECORD)
        .map(|r| {
            let mut renew = [0u8; 32];
            let mut cancel = [0u8; 32];
            let mut exp = [0u8; 8];
            renew.copy_from_slice(&r[..32]);
            cancel.copy_from_slice(&r[32..64]);
            exp.copy_from_slice(&r[64..]);
            Lease {
                renew_secret: renew,
                cancel_secret: cancel,
                expires_at: u64::from_be_bytes(exp),
            }
        })
        .collect())
}

fn read_leases(path: &Path) -> Result<Vec<Lease>> {
    match fs::read(path) {
        Ok(data) => decode_leases(path, &data),
        Err(e) if e.kind() == IoKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read", path, e)),
    }
}

fn read_mutable(path: &Path) -> Result<Option<Vec<u8>>> {
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
            let mut buf = vec![0u8; (r.end - r.start) as usize];
            file.read_exact_at(&mut buf, r.start)
                .map_err(|e| io_err("read", &path, e))?;
            Ok(Bytes::from(buf))
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
}

/// Register `fs` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_storage(
        NAME,
        "shares as files under a directory; crash-safe (write, fsync, link/rename)",
        |ctx: &PluginContext| {
            let cfg: FsConfig = ctx.config.parse()?;
            let root = ctx.basedir.join(&cfg.path);
            Ok(Arc::new(FsBackend::open(root)?) as Arc<dyn StorageBackend>)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wv(offset: u64, data: &[u8]) -> WriteVector {
        WriteVector {
            offset,
            data: Bytes::copy_from_slice(data),
        }
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

    #[tokio::test]
    async fn a_journal_left_by_a_crash_is_applied_before_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBackend::open(dir.path()).unwrap();
        let si = StorageIndex([4; 16]);
        let mut model = vec![1u8; (REWRITE_LIMIT + 10) as usize];
        assert!(
            b.test_and_write(&si, 0, &[TestVector::absent()], &[wv(0, &model)], None)
                .await
                .unwrap()
        );
        // The crash: the journal is in place, the share not yet changed.
        let writes = vec![wv(3, b"journaled"), wv(REWRITE_LIMIT + 8, b"end")];
        std::fs::write(b.journal_path(&si, 0), encode_journal(&writes, None)).unwrap();
        apply_writes(&mut model, &writes, None).unwrap();
        let got = b
            .read(&si, 0, ShareKind::Mutable, 0, 1 << 30)
            .await
            .unwrap();
        assert!(got == model);
        assert!(!b.journal_path(&si, 0).exists());
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

    #[test]
    fn lease_file_corruption_is_reported() {
        let e = decode_leases(Path::new("x"), &[0u8; 10]).unwrap_err();
        assert_eq!(e.kind(), tahoe_core::ErrorKind::Corrupt);
    }
}
