//! A tahoe storage backend in its own crate, built as a shared library and
//! loaded by one line of `tahoe.toml` (see README.md here).
//!
//! Layout: `ROOT/<storage index in hex>/<shnum>.imm` (sealed immutable
//! shares), `<shnum>.mut` (mutable ones) and `leases`. Uploads in progress
//! are files in `ROOT/pending/`, hard-linked into place when sealed: a
//! share appears whole or not at all, and the first seal wins.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tahoe_api::{Error, ErrorKind, Lease, Result, ShareInfo, ShareKind, StorageIndex};
use tahoe_api::{TestVector, WriteVector, util, wire};

/// The backend: a root directory, and a lock that makes each mutable
/// test-and-write and lease update atomic.
pub struct DirStore {
    root: PathBuf,
    lock: Mutex<()>,
    next: AtomicU64,
}

/// `[storage.dirstore]`: `path = "DIR"` (default `dirstore`, relative to
/// the node's base directory).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    path: Option<String>,
}

/// An immutable share being written, in `ROOT/pending/`.
pub struct Pending {
    tmp: PathBuf,
    dest: PathBuf,
    file: File,
}

/// The file's bytes; a missing file reads as empty.
fn read_or_empty(path: &Path) -> Result<Vec<u8>> {
    match fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => Ok(other?),
    }
}

/// Write `data` to `path` atomically: a temporary file, synced, renamed.
fn replace(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(File::open(path.parent().unwrap_or(path))?.sync_all()?)
}

impl DirStore {
    fn dir(&self, si: &StorageIndex) -> PathBuf {
        self.root.join(si.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    fn share(&self, si: &StorageIndex, shnum: u8, kind: ShareKind) -> PathBuf {
        let ext = if kind == ShareKind::Mutable { "mut" } else { "imm" };
        self.dir(si).join(format!("{shnum}.{ext}"))
    }
}

impl tahoe_api::StorageBackend for DirStore {
    const NAME: &'static str = "dirstore";
    const DESCRIPTION: &'static str = "example: shares as files in a directory (examples/custom-backend)";
    type Pending = Pending;

    fn open(config: &str, basedir: &Path) -> Result<Self> {
        let config: Config =
            toml::from_str(config).map_err(|e| Error::new(ErrorKind::ConfigInvalid, format!("[storage.dirstore]: {e}")))?;
        let root = basedir.join(config.path.as_deref().unwrap_or("dirstore"));
        fs::create_dir_all(root.join("pending"))?;
        for entry in fs::read_dir(root.join("pending"))? {
            fs::remove_file(entry?.path())?; // left unsealed by a crash
        }
        Ok(DirStore { root, lock: Mutex::new(()), next: AtomicU64::new(0) })
    }

    fn create(&self, si: &StorageIndex, shnum: u8, size: u64) -> Result<Pending> {
        let dest = self.share(si, shnum, ShareKind::Immutable);
        if dest.exists() || self.share(si, shnum, ShareKind::Mutable).exists() {
            return Err(Error::new(ErrorKind::AlreadyExists, "the share exists"));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join("pending").join(format!("{}-{n}", std::process::id()));
        let file = File::create(&tmp)?;
        file.set_len(size)?;
        Ok(Pending { tmp, dest, file })
    }

    fn read(&self, si: &StorageIndex, shnum: u8, kind: ShareKind, offset: u64, len: u64) -> Result<Vec<u8>> {
        let file = File::open(self.share(si, shnum, kind))?;
        let r = util::read_range(file.metadata()?.len(), offset, len);
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        file.read_exact_at(&mut buf, r.start)?;
        Ok(buf)
    }

    fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let Ok(entries) = fs::read_dir(self.dir(si)) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for entry in entries {
            let (entry, kinds) = (entry?, [("imm", ShareKind::Immutable), ("mut", ShareKind::Mutable)]);
            let name = entry.file_name().to_string_lossy().into_owned();
            for (ext, kind) in kinds {
                if let Some(Ok(shnum)) = name.strip_suffix(ext).and_then(|n| n.strip_suffix('.')).map(str::parse) {
                    out.push(ShareInfo { shnum, kind, size: entry.metadata()?.len() });
                }
            }
        }
        out.sort_by_key(|i| i.shnum);
        Ok(out)
    }

    fn delete(&self, si: &StorageIndex, shnum: u8) -> Result<()> {
        let _guard = self.lock.lock();
        let imm = self.share(si, shnum, ShareKind::Immutable);
        fs::remove_file(if imm.exists() { imm } else { self.share(si, shnum, ShareKind::Mutable) })?;
        if self.list(si)?.is_empty() {
            let _ = fs::remove_file(self.dir(si).join("leases")); // they go with the last share
            let _ = fs::remove_dir(self.dir(si));
        }
        Ok(())
    }

    fn storage_indexes(&self, after: Option<&StorageIndex>, limit: usize) -> Result<Option<Vec<StorageIndex>>> {
        // Every directory named by 32 hex digits (hex sorts as the bytes do).
        let mut sis: Vec<StorageIndex> = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let name = entry?.file_name();
            let hex = name.to_str().filter(|n| n.len() == 32).unwrap_or("");
            let mut si = [0u8; 16];
            let parsed = (0..16).all(|i| match u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("-"), 16) {
                Ok(b) => {
                    si[i] = b;
                    true
                }
                Err(_) => false,
            });
            if parsed && after.is_none_or(|a| si > *a) {
                sis.push(si);
            }
        }
        sis.sort_unstable();
        sis.truncate(limit);
        Ok(Some(sis))
    }

    // remaining_capacity: the default, "cannot tell" (this example does
    // not count space).

    fn test_and_write(
        &self, si: &StorageIndex, shnum: u8, tests: &[TestVector], writes: &[WriteVector], new_length: Option<u64>,
    ) -> Result<bool> {
        let _guard = self.lock.lock();
        if self.share(si, shnum, ShareKind::Immutable).exists() {
            return Err(Error::new(ErrorKind::AlreadyExists, "an immutable share has that number"));
        }
        let path = self.share(si, shnum, ShareKind::Mutable);
        let mut data = read_or_empty(&path)?;
        if !util::tests_hold(&data, tests) {
            return Ok(false);
        }
        util::apply_writes(&mut data, writes, new_length)?; // refuses sizes over 1 GiB
        if !data.is_empty() || path.exists() {
            fs::create_dir_all(self.dir(si))?;
            replace(&path, &data)?;
        }
        Ok(true)
    }

    fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        let _guard = self.lock.lock();
        if self.list(si)?.is_empty() {
            return Err(Error::new(ErrorKind::NotFound, "no shares to lease"));
        }
        let mut leases = self.leases(si)?;
        util::merge_lease(&mut leases, lease);
        replace(&self.dir(si).join("leases"), &wire::encode_leases(&leases))
    }

    fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        wire::decode_leases(&read_or_empty(&self.dir(si).join("leases"))?)
    }
}

impl tahoe_api::PendingShare for Pending {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        Ok(self.file.write_all_at(data, offset)?) // bounds are checked by the node
    }

    fn seal(self) -> Result<()> {
        self.file.sync_all()?;
        let dir = self.dest.parent().unwrap_or(&self.dest);
        fs::create_dir_all(dir)?;
        if self.dest.with_extension("mut").exists() {
            return Err(Error::new(ErrorKind::AlreadyExists, "a mutable share has that number"));
        }
        fs::hard_link(&self.tmp, &self.dest)?; // AlreadyExists: another seal won
        Ok(File::open(dir)?.sync_all()?)
    }
    // abort: the default, dropping, which removes the file.
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

tahoe_api::export_storage_backend!(DirStore);
