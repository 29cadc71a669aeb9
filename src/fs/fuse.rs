//! The FUSE front end: the kernel's calls, by inode, as [`Fs`] calls by
//! path.
//!
//! fuser reads `/dev/fuse` on its own thread and hands each call here;
//! each is answered from a task on the node's tokio runtime, so a slow
//! upload on close does not hold up a listing or a read elsewhere.
//!
//! Inodes: the root is 1; every other path gets a number when the kernel
//! first looks it up (a hash of its path, so a listing and a later lookup
//! agree without remembering every name listed), kept while the kernel
//! holds it (its lookup count) and moved with the entry on rename.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{Hash as _, Hasher as _};
use std::os::unix::ffi::OsStrExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

use super::error::{FsError, FsResult};
use super::open::{OpenFile, OpenHow};
use super::tree::{Fs, Kind, Stat};

/// A mount of one [`Fs`].
pub struct Mount {
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    inodes: Arc<Mutex<Inodes>>,
    handles: Arc<Mutex<HashMap<u64, Handle>>>,
    next_handle: AtomicU64,
    /// Who owns every file (the mounting user).
    owner: (u32, u32),
}

enum Handle {
    File(Arc<OpenFile>),
    Dir(Arc<Vec<(String, Stat)>>),
}

#[derive(Default)]
struct Inodes {
    paths: HashMap<u64, (Vec<String>, u64)>,
    numbers: HashMap<Vec<String>, u64>,
}

impl Inodes {
    fn path(&self, ino: INodeNo) -> FsResult<Vec<String>> {
        if ino == INodeNo::ROOT {
            return Ok(Vec::new());
        }
        self.paths
            .get(&ino.0)
            .map(|(p, _)| p.clone())
            .ok_or(FsError::NotFound)
    }

    /// The number of `path`, without taking a lookup.
    fn number(&self, path: &[String]) -> u64 {
        if path.is_empty() {
            return INodeNo::ROOT.0;
        }
        if let Some(n) = self.numbers.get(path) {
            return *n;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        // Above the root, and never 0.
        h.finish() | (1 << 63)
    }

    /// Take one lookup of `path`; its number.
    fn take(&mut self, path: &[String]) -> u64 {
        let n = self.number(path);
        if n == INodeNo::ROOT.0 {
            return n;
        }
        let e = self.paths.entry(n).or_insert_with(|| (path.to_vec(), 0));
        e.1 += 1;
        self.numbers.insert(path.to_vec(), n);
        n
    }

    fn forget(&mut self, ino: u64, count: u64) {
        if let Some(e) = self.paths.get_mut(&ino) {
            e.1 = e.1.saturating_sub(count);
            if e.1 == 0 {
                let path = e.0.clone();
                self.paths.remove(&ino);
                if self.numbers.get(&path) == Some(&ino) {
                    self.numbers.remove(&path);
                }
            }
        }
    }

    /// `from` and everything under it now live at `to`.
    fn moved(&mut self, from: &[String], to: &[String]) {
        self.numbers.remove(to);
        let moved: Vec<(Vec<String>, u64)> = self
            .numbers
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        for (old, n) in moved {
            self.numbers.remove(&old);
            let mut new = to.to_vec();
            new.extend_from_slice(&old[from.len()..]);
            if let Some(e) = self.paths.get_mut(&n) {
                e.0 = new.clone();
            }
            self.numbers.insert(new, n);
        }
    }
}

impl Mount {
    /// A mount of `fs`, answering from tasks on `rt`.
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle) -> Mount {
        let owner = process_owner();
        Mount {
            fs,
            rt,
            inodes: Arc::new(Mutex::new(Inodes::default())),
            handles: Arc::new(Mutex::new(HashMap::new())),
            next_handle: AtomicU64::new(1),
            owner,
        }
    }

    fn path(&self, ino: INodeNo) -> FsResult<Vec<String>> {
        self.inodes
            .lock()
            .map_err(|_| FsError::Invalid("poisoned".into()))?
            .path(ino)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> FsResult<Vec<String>> {
        let mut p = self.path(parent)?;
        p.push(Fs::name(name.as_bytes())?);
        Ok(p)
    }

    fn file(&self, fh: FileHandle) -> FsResult<Arc<OpenFile>> {
        match self.handles.lock().ok().and_then(|h| match h.get(&fh.0) {
            Some(Handle::File(f)) => Some(f.clone()),
            _ => None,
        }) {
            Some(f) => Ok(f),
            None => Err(FsError::Invalid("no such open file".into())),
        }
    }

    fn ttl(&self) -> Duration {
        self.fs.config.cache_ttl
    }

    /// Run `work` on the runtime and answer with `answer`, or the error.
    fn spawn<T: Send + 'static, R: Send + 'static>(
        &self,
        reply: R,
        work: impl Future<Output = FsResult<T>> + Send + 'static,
        answer: impl FnOnce(R, T) + Send + 'static,
        fail: impl FnOnce(R, Errno) + Send + 'static,
    ) {
        self.rt.spawn(async move {
            match work.await {
                Ok(v) => answer(reply, v),
                Err(e) => {
                    if let FsError::Grid(g) = &e {
                        tracing::warn!("mount: {g:#}");
                    }
                    fail(reply, Errno::from_i32(e.errno()))
                }
            }
        });
    }
}

/// The uid and gid this process runs as (the owner of `/proc/self`).
fn process_owner() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self")
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((0, 0))
}

/// Take a lookup of `path`; the attributes of `s` under its number.
fn take_attr(
    inodes: &Mutex<Inodes>,
    path: &[String],
    s: &Stat,
    owner: (u32, u32),
) -> FsResult<FileAttr> {
    let ino = inodes
        .lock()
        .map_err(|_| FsError::Invalid("poisoned".into()))?
        .take(path);
    Ok(attr(ino, s, owner))
}

/// The attributes the kernel sees.
fn attr(ino: u64, s: &Stat, owner: (u32, u32)) -> FileAttr {
    let (kind, perm, nlink) = match (s.kind, s.writable) {
        (Kind::Dir, true) => (FileType::Directory, 0o755, 2),
        (Kind::Dir, false) => (FileType::Directory, 0o555, 2),
        (Kind::File, true) => (FileType::RegularFile, 0o644, 1),
        (Kind::File, false) => (FileType::RegularFile, 0o444, 1),
    };
    FileAttr {
        ino: INodeNo(ino),
        size: s.size,
        blocks: s.size.div_ceil(512),
        atime: s.mtime,
        mtime: s.mtime,
        ctime: s.mtime,
        crtime: s.mtime,
        kind,
        perm,
        nlink,
        uid: owner.0,
        gid: owner.1,
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for Mount {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Large writes and read-ahead: fewer calls per megabyte.
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let path = match self.child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let fs = self.fs.clone();
        self.spawn_entry(reply, path.clone(), async move { fs.stat(&path).await });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Ok(mut i) = self.inodes.lock() {
            i.forget(ino.0, nlookup);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let open = fh.and_then(|fh| self.file(fh).ok());
        let (fs, owner, ttl) = (self.fs.clone(), self.owner, self.ttl());
        self.spawn(
            reply,
            async move {
                let s = fs.stat_through(&path, open.as_deref()).await?;
                Ok(attr(ino.0, &s, owner))
            },
            move |r, a| r.attr(&ttl, &a),
            ReplyAttr::error,
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Modes and owners are not kept (the grid has no users): accepted
        // and ignored, as `cp -p` and `rsync -a` need.
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let open = fh.and_then(|fh| self.file(fh).ok());
        let (fs, owner, ttl) = (self.fs.clone(), self.owner, self.ttl());
        self.spawn(
            reply,
            async move {
                fs.set_attrs(&path, open.as_deref(), size, mtime.map(time_of))
                    .await?;
                let s = fs.stat_through(&path, open.as_deref()).await?;
                Ok(attr(ino.0, &s, owner))
            },
            move |r, a| r.attr(&ttl, &a),
            ReplyAttr::error,
        );
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let path = match self.child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let fs = self.fs.clone();
        self.spawn_entry(reply, path.clone(), async move { fs.mkdir(&path).await });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, Kind::File, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, Kind::Dir, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(Errno::EINVAL);
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let (from, to) = match (self.child(parent, name), self.child(newparent, newname)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return reply.error(Errno::from_i32(e.errno())),
        };
        let (fs, inodes) = (self.fs.clone(), self.inodes.clone());
        self.spawn(
            reply,
            async move {
                fs.rename(&from, &to, no_replace).await?;
                if let Ok(mut i) = inodes.lock() {
                    i.moved(&from, &to);
                }
                Ok(())
            },
            |r, ()| r.ok(),
            ReplyEmpty::error,
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let how = OpenHow {
            write: flags.acc_mode() != OpenAccMode::O_RDONLY,
            truncate: flags.0 & libc::O_TRUNC != 0,
            ..OpenHow::default()
        };
        let fs = self.fs.clone();
        let handles = self.handles.clone();
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.spawn(
            reply,
            async move {
                let f = fs.open(&path, how).await?;
                if let Ok(mut h) = handles.lock() {
                    h.insert(n, Handle::File(f));
                }
                Ok(n)
            },
            |r, n| r.opened(FileHandle(n), FopenFlags::empty()),
            ReplyOpen::error,
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let path = match self.child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let how = OpenHow {
            write: true,
            create: true,
            exclusive: flags & libc::O_EXCL != 0,
            truncate: flags & libc::O_TRUNC != 0,
        };
        let (fs, inodes, owner, ttl) =
            (self.fs.clone(), self.inodes.clone(), self.owner, self.ttl());
        let handles = self.handles.clone();
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.spawn(
            reply,
            async move {
                let f = fs.open(&path, how).await?;
                let s = f.stat();
                if let Ok(mut h) = handles.lock() {
                    h.insert(n, Handle::File(f));
                }
                take_attr(&inodes, &path, &s, owner)
            },
            move |r, a| r.created(&ttl, &a, Generation(0), FileHandle(n), FopenFlags::empty()),
            ReplyCreate::error,
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(_) => return reply.error(Errno::EBADF),
        };
        self.spawn(
            reply,
            async move { f.read(offset, size).await },
            |r, data| r.data(&data),
            ReplyData::error,
        );
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let f = match self.file(fh) {
            Ok(f) => f,
            Err(_) => return reply.error(Errno::EBADF),
        };
        let data = data.to_vec();
        self.spawn(
            reply,
            async move { f.write(offset, &data).await },
            |r, n| r.written(n),
            ReplyWrite::error,
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) waits for this: an upload that fails fails the close.
        self.sync(fh, reply);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(fh, reply);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let h = self.handles.lock().ok().and_then(|mut h| h.remove(&fh.0));
        let Some(Handle::File(f)) = h else {
            return reply.ok();
        };
        self.spawn(
            reply,
            async move { f.release(true).await },
            |r, ()| r.ok(),
            ReplyEmpty::error,
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let fs = self.fs.clone();
        let handles = self.handles.clone();
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.spawn(
            reply,
            async move {
                // One listing per open directory: readdir's later calls
                // page through it rather than reading it again.
                let entries = fs.list(&path).await?;
                if let Ok(mut h) = handles.lock() {
                    h.insert(n, Handle::Dir(Arc::new(entries)));
                }
                Ok(n)
            },
            |r, n| r.opened(FileHandle(n), FopenFlags::empty()),
            ReplyOpen::error,
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.handles.lock().ok().and_then(|h| match h.get(&fh.0) {
            Some(Handle::Dir(d)) => Some(d.clone()),
            _ => None,
        }) {
            Some(d) => d,
            None => return reply.error(Errno::EBADF),
        };
        let Ok(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let inodes = match self.inodes.lock() {
            Ok(i) => i,
            Err(_) => return reply.error(Errno::EIO),
        };
        let parent = path.split_last().map(|(_, p)| p).unwrap_or(&[]);
        let dots = [
            (inodes.number(&path), FileType::Directory, ".".to_string()),
            (inodes.number(parent), FileType::Directory, "..".to_string()),
        ];
        let mut child = path.clone();
        let listed = entries.iter().map(|(name, s)| {
            child.truncate(path.len());
            child.push(name.clone());
            let kind = if s.kind == Kind::Dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            (inodes.number(&child), kind, name.clone())
        });
        for (i, (n, kind, name)) in dots
            .into_iter()
            .chain(listed)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(n), i as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut h) = self.handles.lock() {
            h.remove(&fh.0);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCK: u64 = 4096;
        let space = self.fs.space();
        let blocks = space.free / BLOCK;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            0,
            0,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }
}

impl Mount {
    /// Run `work` (what names `path` now) and answer the kernel with the
    /// entry, taking a lookup of `path`.
    fn spawn_entry(
        &self,
        reply: ReplyEntry,
        path: Vec<String>,
        work: impl Future<Output = FsResult<Stat>> + Send + 'static,
    ) {
        let (inodes, owner, ttl) = (self.inodes.clone(), self.owner, self.ttl());
        self.spawn(
            reply,
            async move { take_attr(&inodes, &path, &work.await?, owner) },
            move |r, a| r.entry(&ttl, &a, Generation(0)),
            ReplyEntry::error,
        );
    }

    fn remove(&self, parent: INodeNo, name: &OsStr, kind: Kind, reply: ReplyEmpty) {
        let path = match self.child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(Errno::from_i32(e.errno())),
        };
        let fs = self.fs.clone();
        self.spawn(
            reply,
            async move { fs.remove(&path, kind).await },
            |r, ()| r.ok(),
            ReplyEmpty::error,
        );
    }

    fn sync(&self, fh: FileHandle, reply: ReplyEmpty) {
        let f = match self.file(fh) {
            Ok(f) => f,
            // A directory handle, or one already released.
            Err(_) => return reply.ok(),
        };
        self.spawn(
            reply,
            async move { f.flush().await },
            |r, ()| r.ok(),
            ReplyEmpty::error,
        );
    }
}

/// Mount `fs` at `mountpoint`; the mount lasts until the returned
/// session is dropped or the mount point is unmounted (`fusermount -u`).
pub fn mount(
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    mountpoint: &std::path::Path,
) -> std::io::Result<fuser::BackgroundSession> {
    let mut config = fuser::Config::default();
    let mut options = vec![
        fuser::MountOption::FSName("tahoe".into()),
        fuser::MountOption::Subtype("tahoe".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if fs.read_only() {
        options.push(fuser::MountOption::RO);
    }
    config.mount_options = options;
    // Several threads read /dev/fuse: a long call (an upload on close)
    // never holds the others up even before it reaches the runtime.
    config.n_threads = Some(2);
    fuser::spawn_mount(Mount::new(fs, rt), mountpoint, &config)
}
