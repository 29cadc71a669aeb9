//! A directory cap seen as a tree of paths: resolution through cached
//! listings, and the calls that change the tree.
//!
//! Paths are lists of names, each already normalised as a directory entry
//! name is ([`Fs::name`], [`Fs::path`]); the empty path is the root, the
//! directory the cap names. Nothing above the root can be named: `..` at
//! the root stays at the root, so a mount or an account sees exactly what
//! its cap reaches.
//!
//! Listings are cached for [`FsConfig::cache_ttl`] (other writers' changes
//! show up after that long) and changed in place by this file system's own
//! calls, so a file it just wrote or a name it just removed is seen at once.
//! Files being written and not yet uploaded are shown from their spool
//! (see [`crate::fs::open`]): they exist for this file system only until
//! their upload links them, and a crash before that links nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use tahoe_core::client::dirnode::{DirClient, now};
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{Metadata, Node, Replace, normalize_name};
use tahoe_core::format::ssk::MutableFormat;

use super::error::{FsError, FsResult};
use super::open::OpenFile;
use super::{Call, Frontend, Journal};
use crate::client::GridClient;

/// How a file system behaves.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// How long a directory listing (and so an entry's attributes) is
    /// trusted before it is read again.
    pub cache_ttl: Duration,
    /// How many bytes a sequential read fetches ahead of the reader.
    pub read_ahead: usize,
    /// Refuse every change, whatever the cap allows.
    pub read_only: bool,
}

impl Default for FsConfig {
    fn default() -> FsConfig {
        FsConfig {
            cache_ttl: Duration::from_secs(1),
            read_ahead: 8 << 20,
            read_only: false,
        }
    }
}

/// A file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A file (or an entry of a kind this program does not know, shown as
    /// an empty file that cannot be read).
    File,
}

/// What a path names.
#[derive(Debug, Clone)]
pub struct Stat {
    /// File or directory.
    pub kind: Kind,
    /// Bytes (a directory: 0).
    pub size: u64,
    /// Modification time: the entry's `mtime` metadata, else when it was
    /// last linked.
    pub mtime: SystemTime,
    /// What the entry links to; `None` for a file being written that has
    /// not been uploaded yet.
    pub node: Option<Node>,
    /// Whether it can be changed here: a directory's entries, or a file's
    /// contents (the file's directory is writable).
    pub writable: bool,
    /// The entry's metadata as last read or written here (`None` for the
    /// root and for files not linked yet).
    pub metadata: Option<Arc<Metadata>>,
    /// A mutable file's sequence number as the grid last told it (`None`
    /// for other entries, and when the grid could not tell: its size is
    /// then 0 and unknown).
    pub version: Option<u64>,
}

/// A directory's entries as read, with the cap they were read from.
pub(super) struct Listing {
    pub(super) cap: DirCap,
    pub(super) entries: BTreeMap<String, Stat>,
}

struct Cached {
    listing: Arc<Listing>,
    at: Instant,
}

/// The grid's free space as `statfs` tells it.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    /// Bytes of files that still fit (the servers' free space times k/N).
    pub free: u64,
    /// Servers that told their free space.
    pub servers: usize,
}

/// A directory cap seen as a file system (see the module docs).
pub struct Fs {
    pub(super) grid: Arc<GridClient>,
    root: DirCap,
    pub(super) spool: PathBuf,
    pub(super) config: FsConfig,
    pub(super) via: Frontend,
    pub(super) journal: Arc<dyn Journal>,
    cache: Mutex<HashMap<Vec<String>, Cached>>,
    /// Files open for writing, by path.
    pending: Mutex<HashMap<Vec<String>, Weak<OpenFile>>>,
}

/// The most names a path may have: deeper paths are refused before any
/// directory is read.
pub const MAX_DEPTH: usize = 256;

impl Fs {
    /// The tree under `root`, reached through `grid`; `spool` is a private
    /// (0700) directory for files being written.
    pub fn new(
        grid: Arc<GridClient>,
        root: DirCap,
        spool: PathBuf,
        mut config: FsConfig,
        via: Frontend,
        journal: Arc<dyn Journal>,
    ) -> Arc<Fs> {
        if !matches!(root, DirCap::Write(_)) {
            config.read_only = true;
        }
        Arc::new(Fs {
            grid,
            root,
            spool,
            config,
            via,
            journal,
            cache: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Whether every change is refused.
    pub fn read_only(&self) -> bool {
        self.config.read_only
    }

    /// The front end this file system serves.
    pub fn via(&self) -> Frontend {
        self.via
    }

    /// Count a call's outcome and pass it on.
    pub(super) fn counted<T>(&self, call: Call, r: FsResult<T>) -> FsResult<T> {
        self.journal.call(self.via, call, r.is_ok());
        r
    }

    pub(super) async fn dirs(&self) -> FsResult<DirClient> {
        Ok(self.grid.dir_client(self.grid.fs_keys()).await?)
    }

    /// One name as a front end received it, as an entry name: UTF-8, NFC,
    /// no `/` or NUL, not `.` or `..`, not too long.
    pub fn name(raw: &[u8]) -> FsResult<String> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| FsError::BadName("names on the grid are UTF-8".into()))?;
        normalize_name(text).map_err(|e| FsError::BadName(e.to_string()))
    }

    /// A path as SFTP gives it (`/a/b`, `a/./b/../c`): names from the
    /// root, `.` dropped, `..` going up but never above the root.
    pub fn path(text: &[u8]) -> FsResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for part in text.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    out.pop();
                }
                name => out.push(Fs::name(name)?),
            }
            if out.len() > MAX_DEPTH {
                return Err(FsError::BadName(format!(
                    "paths deeper than {MAX_DEPTH} names are refused"
                )));
            }
        }
        Ok(out)
    }

    /// The listing of the directory at `path`.
    pub(super) async fn listing(&self, path: &[String]) -> FsResult<Arc<Listing>> {
        if path.len() > MAX_DEPTH {
            return Err(FsError::BadName(format!(
                "paths deeper than {MAX_DEPTH} names are refused"
            )));
        }
        let mut cap = self.root.clone();
        for depth in 0..=path.len() {
            let here = &path[..depth];
            let listing = match self.cached(here, &cap) {
                Some(l) => l,
                None => self.read_dir(here, &cap).await?,
            };
            let Some(name) = path.get(depth) else {
                return Ok(listing);
            };
            let entry = listing.entries.get(name).ok_or(FsError::NotFound)?;
            cap = entry
                .node
                .as_ref()
                .and_then(Node::dir_cap)
                .cloned()
                .ok_or(FsError::NotDir)?;
        }
        unreachable!("the loop returns at the path's end")
    }

    fn cached(&self, path: &[String], cap: &DirCap) -> Option<Arc<Listing>> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(path)?;
        (c.at.elapsed() < self.config.cache_ttl && &c.listing.cap == cap).then(|| c.listing.clone())
    }

    async fn read_dir(&self, path: &[String], cap: &DirCap) -> FsResult<Arc<Listing>> {
        let dir = self.dirs().await?.read(cap).await?;
        let writable = !self.config.read_only && dir.is_writeable();
        let mut entries = BTreeMap::new();
        let mut mutable = Vec::new();
        for (name, entry) in dir.entries() {
            let node = dir.node_of(name, entry)?;
            let stat = stat_of(&node, entry.metadata(), writable);
            if stat.kind == Kind::File && cap_size(&node).is_none() {
                mutable.push(name.to_string());
            }
            entries.insert(name.to_string(), stat);
        }
        // Mutable files do not carry their size in their cap: ask the
        // grid, several at a time.
        let sizes: Vec<(String, Option<(u64, u64)>)> = futures::stream::iter(mutable)
            .map(|name| {
                let node = entries.get(&name).and_then(|s| s.node.clone());
                async move { (name, self.mutable_version(node.as_ref()).await) }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (name, found) in sizes {
            if let Some(s) = entries.get_mut(&name) {
                s.size = found.map_or(0, |f| f.0);
                s.version = found.map(|f| f.1);
            }
        }
        let listing = Arc::new(Listing {
            cap: cap.clone(),
            entries,
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                path.to_vec(),
                Cached {
                    listing: listing.clone(),
                    at: Instant::now(),
                },
            );
        }
        Ok(listing)
    }

    /// A mutable file's size and sequence number, when the grid tells.
    async fn mutable_version(&self, node: Option<&Node>) -> Option<(u64, u64)> {
        let cap = match node.and_then(Node::known) {
            Some(Cap::SskWrite(w)) => w.read_cap(),
            Some(Cap::SskRead(r)) => r.clone(),
            _ => return None,
        };
        let client = self.grid.mutable_client(KeyPool::new(0)).await.ok()?;
        let p = client.stat(&cap).await.ok()?;
        Some((p.data_length, p.seqnum))
    }

    /// Change the cached listing of `dir` (when cached) as the grid was
    /// just changed by this file system.
    pub(super) fn edit_cached(
        &self,
        dir: &[String],
        edit: impl FnOnce(&mut BTreeMap<String, Stat>),
    ) {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(c) = cache.get_mut(dir)
        {
            let mut entries = c.listing.entries.clone();
            edit(&mut entries);
            c.listing = Arc::new(Listing {
                cap: c.listing.cap.clone(),
                entries,
            });
        }
    }

    /// Forget everything cached at or under `dir`: the next look reads
    /// the grid.
    pub fn forget_under(&self, dir: &[String]) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|p, _| !p.starts_with(dir));
        }
    }

    /// What `path` names.
    pub async fn stat(&self, path: &[String]) -> FsResult<Stat> {
        let r = self.stat_uncounted(path).await;
        self.counted(Call::Stat, r)
    }

    /// [`Fs::stat`] without counting (a step of another call).
    pub(super) async fn stat_uncounted(&self, path: &[String]) -> FsResult<Stat> {
        let Some((name, parent)) = path.split_last() else {
            return Ok(Stat {
                kind: Kind::Dir,
                size: 0,
                mtime: UNIX_EPOCH,
                node: Some(Node::from_cap(Cap::Dir(self.root.clone()))),
                writable: !self.config.read_only,
                metadata: None,
                version: None,
            });
        };
        if let Some(open) = self.pending_at(path) {
            return Ok(open.stat());
        }
        let listing = self.listing(parent).await?;
        listing.entries.get(name).cloned().ok_or(FsError::NotFound)
    }

    /// The entries of the directory at `path`, in name order, with the
    /// files being written in it.
    pub async fn list(&self, path: &[String]) -> FsResult<Vec<(String, Stat)>> {
        let r = async {
            let listing = self.listing(path).await?;
            let open = self.pending_in(path);
            if open.is_empty() {
                return Ok(listing
                    .entries
                    .iter()
                    .map(|(n, s)| (n.clone(), s.clone()))
                    .collect());
            }
            let mut entries = listing.entries.clone();
            for (name, file) in open {
                entries.insert(name, file.stat());
            }
            Ok(entries.into_iter().collect())
        }
        .await;
        self.counted(Call::List, r)
    }

    /// The writable listing of the directory at `path`.
    pub(super) async fn writable_dir(&self, path: &[String]) -> FsResult<Arc<Listing>> {
        if self.config.read_only {
            return Err(FsError::ReadOnly("this file system is read-only".into()));
        }
        let listing = self.listing(path).await?;
        if !matches!(listing.cap, DirCap::Write(_)) {
            return Err(FsError::ReadOnly("this directory is read-only".into()));
        }
        Ok(listing)
    }

    /// Make an empty directory at `path`.
    pub async fn mkdir(&self, path: &[String]) -> FsResult<Stat> {
        let r = async {
            let (name, parent) = path.split_last().ok_or(FsError::Exists)?;
            let listing = self.writable_dir(parent).await?;
            if listing.entries.contains_key(name) || self.pending_at(path).is_some() {
                return Err(FsError::Exists);
            }
            let dirs = self.dirs().await?;
            let made = dirs.create(MutableFormat::Sdmf, Vec::new()).await?;
            let node = Node::from_cap(Cap::Dir(made));
            dirs.add(&listing.cap, name, node.clone(), None, Replace::Never)
                .await?;
            let stat = Stat {
                kind: Kind::Dir,
                size: 0,
                mtime: SystemTime::now(),
                node: Some(node),
                writable: true,
                metadata: None,
                version: None,
            };
            self.edit_cached(parent, |e| {
                e.insert(name.clone(), stat.clone());
            });
            Ok(stat)
        }
        .await;
        self.counted(Call::Mkdir, r)
    }

    /// Unlink the file (`kind` [`Kind::File`]) or empty directory
    /// ([`Kind::Dir`]) at `path`. What it linked stays on the grid for
    /// whoever else holds its cap.
    pub async fn remove(&self, path: &[String], kind: Kind) -> FsResult<()> {
        let r = async {
            let (name, parent) = path.split_last().ok_or(FsError::Invalid(
                "the top directory cannot be removed".into(),
            ))?;
            let listing = self.writable_dir(parent).await?;
            let open = self.pending_at(path);
            let Some(found) = listing.entries.get(name) else {
                // A file being written and never uploaded: dropped.
                return match open {
                    Some(_) if kind == Kind::File => {
                        self.detach_pending(path);
                        Ok(())
                    }
                    Some(_) => Err(FsError::NotDir),
                    None => Err(FsError::NotFound),
                };
            };
            match (kind, found.kind) {
                (Kind::File, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::File) => return Err(FsError::NotDir),
                (Kind::Dir, Kind::Dir) => self.check_empty(path).await?,
                (Kind::File, Kind::File) => {}
            }
            let want = found.node.clone();
            let name_owned = name.clone();
            self.dirs()
                .await?
                .modify(&listing.cap, move |d, first| {
                    match d.node(&name_owned)? {
                        // Removed by our own earlier try.
                        None if !first => Ok(()),
                        None => Err(tahoe_core::error::Error::not_found("gone")),
                        // Replaced by another writer meanwhile: theirs stays.
                        Some(n) if Some(&n) != want.as_ref() && first => {
                            Err(tahoe_core::error::Error::conflict(
                                "the entry changed while it was removed",
                            ))
                        }
                        Some(_) => d.remove(&name_owned).map(|_| ()),
                    }
                })
                .await?;
            self.edit_cached(parent, |e| {
                e.remove(name);
            });
            self.forget_under(path);
            self.detach_pending(path);
            Ok(())
        }
        .await;
        self.counted(Call::Remove, r)
    }

    async fn check_empty(&self, path: &[String]) -> FsResult<()> {
        let listing = self.listing(path).await?;
        if !listing.entries.is_empty() || !self.pending_in(path).is_empty() {
            return Err(FsError::NotEmpty);
        }
        Ok(())
    }

    /// Move `from` to `to` (the same directory or another). An existing
    /// `to` is replaced as `rename(2)` does (a file by a file, an empty
    /// directory by a directory) unless `no_replace`.
    pub async fn rename(&self, from: &[String], to: &[String], no_replace: bool) -> FsResult<()> {
        let r = self.rename_uncounted(from, to, no_replace).await;
        self.counted(Call::Rename, r)
    }

    async fn rename_uncounted(
        &self,
        from: &[String],
        to: &[String],
        no_replace: bool,
    ) -> FsResult<()> {
        let ((from_name, from_parent), (to_name, to_parent)) =
            match (from.split_last(), to.split_last()) {
                (Some(f), Some(t)) => (f, t),
                _ => {
                    return Err(FsError::Invalid(
                        "the top directory cannot be moved or replaced".into(),
                    ));
                }
            };
        if from == to {
            return Ok(());
        }
        if to.starts_with(from) {
            return Err(FsError::Invalid(
                "a directory cannot be moved into itself".into(),
            ));
        }
        let source_dir = self.writable_dir(from_parent).await?;
        let target_dir = self.writable_dir(to_parent).await?;
        let source = source_dir.entries.get(from_name).cloned();
        if source.is_none() && self.pending_at(from).is_none() {
            return Err(FsError::NotFound);
        }
        let target = target_dir.entries.get(to_name);
        if no_replace && (target.is_some() || self.pending_at(to).is_some()) {
            return Err(FsError::Exists);
        }
        let Some(moving) = source else {
            // A file being written and never uploaded moves here only.
            if target.is_some_and(|t| t.kind == Kind::Dir) {
                return Err(FsError::IsDir);
            }
            self.detach_pending(to);
            self.move_pending(from, to);
            return Ok(());
        };
        let replace = match target {
            None => Replace::Never,
            Some(old) => match (moving.kind, old.kind) {
                (Kind::File, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::File) => return Err(FsError::NotDir),
                (Kind::Dir, Kind::Dir) => {
                    self.check_empty(to).await?;
                    Replace::Always
                }
                (Kind::File, Kind::File) => Replace::OnlyFiles,
            },
        };
        self.dirs()
            .await?
            .rename(
                &source_dir.cap,
                from_name,
                &target_dir.cap,
                to_name,
                replace,
            )
            .await?;
        self.edit_cached(from_parent, |e| {
            e.remove(from_name);
        });
        self.edit_cached(to_parent, |e| {
            e.insert(to_name.clone(), moving.clone());
        });
        self.forget_under(from);
        self.forget_under(to);
        // Open files follow what they were opened as; one open at the
        // replaced name writes to nothing now.
        self.detach_pending(to);
        self.move_pending(from, to);
        Ok(())
    }

    /// Set the modification time of the entry at `path` (kept in its
    /// `mtime` metadata, as Tahoe-LAFS's SFTP server keeps it).
    pub async fn set_mtime(&self, path: &[String], mtime: SystemTime) -> FsResult<()> {
        let r = async {
            if let Some(open) = self.pending_at(path)
                && !open.set_mtime(mtime).await
            {
                return Ok(());
            }
            let (name, parent) = path.split_last().ok_or(FsError::Invalid(
                "the top directory's time cannot be set".into(),
            ))?;
            let listing = self.writable_dir(parent).await?;
            if !listing.entries.contains_key(name) {
                return Err(FsError::NotFound);
            }
            let secs = seconds(mtime);
            let name_owned = name.clone();
            self.dirs()
                .await?
                .modify(&listing.cap, move |d, _| {
                    let entry = d
                        .get(&name_owned)
                        .ok_or_else(|| tahoe_core::error::Error::not_found("gone"))?;
                    let mut md = entry.metadata().clone();
                    md.remove("tahoe");
                    md.insert("mtime".into(), number(secs));
                    let node = d.node_of(&name_owned, entry)?;
                    d.set(&name_owned, node, Some(md), Replace::Always, now())
                })
                .await?;
            self.edit_cached(parent, |e| {
                if let Some(s) = e.get_mut(name) {
                    s.mtime = mtime;
                }
            });
            Ok(())
        }
        .await;
        self.counted(Call::SetAttr, r)
    }

    /// Link `node` (a file) as the last name of `path`, replacing a file
    /// of that name, never a directory; its metadata is its `mtime` and
    /// `extra`.
    pub async fn link(
        &self,
        path: &[String],
        node: Node,
        mut stat: Stat,
        extra: Metadata,
    ) -> FsResult<()> {
        let (name, parent) = path
            .split_last()
            .ok_or_else(|| FsError::Invalid("a file cannot replace the top directory".into()))?;
        let listing = self.writable_dir(parent).await?;
        let mut md = Metadata::new();
        md.insert("mtime".into(), number(seconds(stat.mtime)));
        md.extend(extra);
        stat.metadata = Some(Arc::new(md.clone()));
        self.dirs()
            .await?
            .add(&listing.cap, name, node, Some(md), Replace::OnlyFiles)
            .await?;
        self.edit_cached(parent, |e| {
            e.insert(name.clone(), stat);
        });
        Ok(())
    }

    /// Make the directory at `path` and any missing above it; a file in
    /// the way is [`FsError::NotDir`].
    pub async fn mkdir_p(&self, path: &[String]) -> FsResult<()> {
        for depth in 1..=path.len() {
            match self.stat_uncounted(&path[..depth]).await {
                Ok(s) if s.kind == Kind::Dir => continue,
                Ok(_) => return Err(FsError::NotDir),
                Err(FsError::NotFound) => match self.mkdir(&path[..depth]).await {
                    // Made meanwhile by another call: fine if a directory.
                    Ok(_) | Err(FsError::Exists) => {}
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The grid's free space, from what its servers announce.
    pub fn space(&self) -> Space {
        let known = self.grid.known();
        let told: Vec<u64> = known.iter().filter_map(|a| a.available_space).collect();
        let e = &self.grid.config().encoding;
        let raw: u64 = told.iter().sum();
        let free = (u128::from(raw) * u128::from(e.k) / u128::from(e.n.max(1))) as u64;
        Space {
            free,
            servers: told.len(),
        }
    }

    /// The file open for writing at `path`, if any.
    pub(super) fn pending_at(&self, path: &[String]) -> Option<Arc<OpenFile>> {
        let pending = self.pending.lock().ok()?;
        pending.get(path).and_then(Weak::upgrade)
    }

    /// Files open for writing directly in `dir`, by name.
    fn pending_in(&self, dir: &[String]) -> Vec<(String, Arc<OpenFile>)> {
        let Ok(pending) = self.pending.lock() else {
            return Vec::new();
        };
        pending
            .iter()
            .filter(|(p, _)| p.len() == dir.len() + 1 && p.starts_with(dir))
            .filter_map(|(p, w)| Some((p.last()?.clone(), w.upgrade()?)))
            .collect()
    }

    /// Register `file` as open for writing at its path: the one already
    /// registered there when there is one.
    pub(super) fn register(&self, file: Arc<OpenFile>) -> Arc<OpenFile> {
        let Ok(mut pending) = self.pending.lock() else {
            return file;
        };
        pending.retain(|_, w| w.strong_count() > 0);
        let path = file.path();
        if let Some(existing) = pending.get(&path).and_then(Weak::upgrade) {
            return existing;
        }
        pending.insert(path, Arc::downgrade(&file));
        file
    }

    /// `file` is no longer open for writing.
    pub(super) fn unregister(&self, file: &OpenFile) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|_, w| !std::ptr::eq(w.as_ptr(), file));
        }
    }

    /// Files open for writing at or under `from` now live under `to`.
    fn move_pending(&self, from: &[String], to: &[String]) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let moving: Vec<Vec<String>> = pending
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for old in moving {
            if let Some(w) = pending.remove(&old) {
                let mut new = to.to_vec();
                new.extend_from_slice(&old[from.len()..]);
                if let Some(f) = w.upgrade() {
                    f.moved(Some(new.clone()));
                }
                pending.insert(new, w);
            }
        }
    }

    /// The file open for writing at `path`, unlinked or replaced: what is
    /// still written to it links nothing.
    fn detach_pending(&self, path: &[String]) {
        if let Some(f) = self.pending_at(path) {
            f.moved(None);
            self.unregister(&f);
        }
    }
}

/// The attributes of a directory entry.
fn stat_of(node: &Node, metadata: &Metadata, dir_writable: bool) -> Stat {
    let kind = if node.is_dir() { Kind::Dir } else { Kind::File };
    let mtime = metadata
        .get("mtime")
        .and_then(serde_json::Value::as_f64)
        .or_else(|| {
            metadata
                .get("tahoe")
                .and_then(|t| t.get("linkmotime"))
                .and_then(serde_json::Value::as_f64)
        })
        .map(time_of)
        .unwrap_or(UNIX_EPOCH);
    let writable = match kind {
        Kind::Dir => matches!(node.dir_cap(), Some(DirCap::Write(_))) && dir_writable,
        Kind::File => dir_writable,
    };
    Stat {
        kind,
        size: cap_size(node).unwrap_or(0),
        mtime,
        node: Some(node.clone()),
        writable,
        metadata: Some(Arc::new(metadata.clone())),
        version: None,
    }
}

/// Seconds since the epoch as a float, as directory metadata keeps times.
pub(super) fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn time_of(secs: f64) -> SystemTime {
    if secs.is_finite() && secs > 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e11))
    } else {
        UNIX_EPOCH
    }
}

fn number(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// The size a node's cap tells: `None` for a mutable file, whose size
/// only the grid knows; 0 for a directory or an unknown kind of cap.
pub(super) fn cap_size(node: &Node) -> Option<u64> {
    match node.known() {
        Some(Cap::Dir(_)) | None => Some(0),
        Some(c) => crate::client::json::size_of(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> FsResult<Vec<String>> {
        Fs::path(s.as_bytes())
    }

    #[test]
    fn paths_never_climb_above_the_root() {
        assert_eq!(path("/a/./b//c/").unwrap(), ["a", "b", "c"]);
        assert_eq!(path("a/../../..").unwrap(), Vec::<String>::new());
        assert_eq!(path("/../../etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(path("x/y/../z").unwrap(), ["x", "z"]);
    }

    #[test]
    fn names_the_grid_cannot_hold_are_refused() {
        for bad in [&b"a\0b"[..], b"\xff\xfe", &[b'n'; 5000][..]] {
            assert!(matches!(Fs::name(bad), Err(FsError::BadName(_))), "{bad:?}");
        }
        assert!(matches!(path("ok/a\0b"), Err(FsError::BadName(_))));
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert!(matches!(path(&deep), Err(FsError::BadName(_))));
        assert_eq!(
            path(&vec!["d"; MAX_DEPTH].join("/")).unwrap().len(),
            MAX_DEPTH
        );
        // NFC, as directory entries store names.
        assert_eq!(Fs::name("e\u{301}".as_bytes()).unwrap(), "\u{e9}");
    }
}
