//! Directories on a grid: create, read, look up paths, add, remove and
//! rename entries.
//!
//! A change to a mutable directory reads its newest version, applies the
//! change to the entries and publishes the result through
//! [`MutableClient::modify`], whose test-and-write detects every writer
//! that got there first; the change is then applied again to what that
//! writer left. So concurrent changes to one directory are merged, never
//! lost (Tahoe-LAFS's answer is to not do that). A change is applied to
//! the newest entries each time, and told whether this is its first try:
//! a retry can find its own earlier, half-published attempt, which is
//! not an error (an entry to add is already there with the same cap, an
//! entry to remove is already gone). A change that fails leaves the
//! directory as it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::client::immutable::client::ImmutableClient;
use crate::client::mutable::file::MutableClient;
use crate::client::source::BytesSource;
use crate::error::{Error, ErrorKind, Result};
use crate::format::cap::{Cap, DirCap};
use crate::format::dirnode::{Directory, Metadata, Node, Replace, WriteKey, normalize_name};
use crate::format::ssk::MAX_SDMF_SIZE;
use crate::format::ssk::MutableFormat;

/// Seconds since the epoch, as Python's `time.time()` gives them: the
/// time directory entries record.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as f64 / 1e6)
        .unwrap_or(0.0)
}

/// The largest directory read into memory: what one SDMF file holds (an
/// MDMF directory could hold more, but every change rewrites it whole).
const MAX_DIRECTORY_SIZE: u64 = MAX_SDMF_SIZE;

/// Directories over one grid's files.
#[derive(Clone)]
pub struct DirClient {
    /// Mutable files: the mutable directories.
    pub mutable: MutableClient,
    /// Immutable files: immutable directories, and files to link.
    pub immutable: ImmutableClient,
}

/// A path inside a directory, split into normalised names (empty parts,
/// from `a//b` or a trailing `/`, are dropped).
pub fn split_path(path: &str) -> Result<Vec<String>> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(normalize_name)
        .collect()
}

/// `a/b/c` for messages.
fn join(path: &[String]) -> String {
    path.join("/")
}

impl DirClient {
    fn write_key(&self, cap: &DirCap) -> Option<WriteKey> {
        match cap {
            DirCap::Write(w) => Some(WriteKey {
                key: w.write_key,
                cipher: self.mutable.cipher.clone(),
            }),
            _ => None,
        }
    }

    /// A new mutable directory holding `children` (name, node, metadata
    /// as given).
    pub async fn create(
        &self,
        format: MutableFormat,
        children: Vec<(String, Node, Metadata)>,
    ) -> Result<DirCap> {
        let key = self.mutable.keys.take().await?;
        let cap = key.write_cap(format);
        let dir_cap = DirCap::Write(cap.clone());
        let mut dir = Directory::new(true, self.write_key(&dir_cap));
        for (name, node, metadata) in children {
            dir.insert(&name, node, metadata)?;
        }
        let source = Arc::new(BytesSource(Bytes::from(dir.pack()?)));
        self.mutable.create_with_key(key, format, source).await?;
        Ok(dir_cap)
    }

    /// A new immutable directory holding `children`, which must all be
    /// immutable (a LIT directory when it packs small enough).
    pub async fn create_immutable(
        &self,
        children: Vec<(String, Node, Metadata)>,
    ) -> Result<DirCap> {
        let mut dir = Directory::new(false, None);
        for (name, node, metadata) in children {
            dir.insert(&name, node, metadata)?;
        }
        let source = Arc::new(BytesSource(Bytes::from(dir.pack()?)));
        let file = self.immutable.put(source).await?;
        DirCap::from_file_cap(file)
            .ok_or_else(|| Error::internal("an upload gave a directory cap".to_string()))
    }

    /// The entries of the directory `cap`.
    pub async fn read(&self, cap: &DirCap) -> Result<Directory> {
        Ok(self.read_sized(cap).await?.0)
    }

    /// [`DirClient::read`], with the size in bytes of the directory's
    /// packed entries (what deep statistics count).
    pub async fn read_sized(&self, cap: &DirCap) -> Result<(Directory, u64)> {
        let data = match cap {
            DirCap::Write(w) => self.read_mutable(&w.read_cap()).await?,
            DirCap::Read(r) => self.read_mutable(r).await?,
            DirCap::Chk(_) | DirCap::Lit(_) => {
                self.immutable
                    .read_all(&cap.file_cap(), MAX_DIRECTORY_SIZE)
                    .await?
            }
            DirCap::Verify(_) | DirCap::ChkVerifier(_) => {
                return Err(Error::invalid_input(
                    "a directory's verify cap cannot list it (it cannot decrypt)",
                ));
            }
        };
        let size = data.len() as u64;
        let dir = Directory::parse(Bytes::from(data), cap.is_mutable(), self.write_key(cap))?;
        Ok((dir, size))
    }

    async fn read_mutable(&self, cap: &crate::format::cap::SskReadCap) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let report = self
            .mutable
            .read(cap, 0..MAX_DIRECTORY_SIZE + 1, &mut out)
            .await?;
        if out.len() as u64 > MAX_DIRECTORY_SIZE {
            return Err(Error::invalid_input(format!(
                "the directory is larger than the {MAX_DIRECTORY_SIZE} bytes read into memory"
            )));
        }
        for b in &report.bad_shares {
            tracing::warn!("directory share {} on {}: {}", b.shnum, b.server, b.reason);
        }
        Ok(out)
    }

    /// Apply `change` to the newest entries of `cap` and publish them
    /// (again on conflict, see the module docs); `change` is told whether
    /// this is its first try, and its answer is returned.
    pub async fn modify<R: Send + 'static>(
        &self,
        cap: &DirCap,
        change: impl Fn(&mut Directory, bool) -> Result<R> + Send + Sync,
    ) -> Result<R> {
        let DirCap::Write(w) = cap else {
            return Err(Error::invalid_input(if cap.is_mutable() {
                "this is a read-only cap of the directory: it cannot be changed"
            } else {
                "an immutable directory cannot be changed"
            }));
        };
        let write_key = self.write_key(cap);
        let first = AtomicBool::new(true);
        let answer = std::sync::Mutex::new(None);
        let apply = |old: &[u8]| -> Result<Option<Vec<u8>>> {
            let mut dir = Directory::parse(Bytes::copy_from_slice(old), true, write_key.clone())?;
            let r = change(&mut dir, first.swap(false, Ordering::Relaxed))?;
            if let Ok(mut a) = answer.lock() {
                *a = Some(r);
            }
            Ok(Some(dir.pack()?))
        };
        self.mutable.modify(w, &apply).await?;
        answer
            .into_inner()
            .ok()
            .flatten()
            .ok_or_else(|| Error::internal("the directory change was not applied".to_string()))
    }

    /// The node at `path` under `root` (`root` itself for an empty path).
    pub async fn resolve(&self, root: &DirCap, path: &[String]) -> Result<Node> {
        let mut node = Node::from_cap(Cap::Dir(root.clone()));
        for (i, name) in path.iter().enumerate() {
            let here = node.dir_cap().cloned().ok_or_else(|| {
                Error::invalid_input(format!("{} is not a directory", join(&path[..i])))
            })?;
            let dir = self
                .read(&here)
                .await
                .map_err(|e| e.context(format!("reading {}", shown_dir(&path[..i]))))?;
            node = dir.node(name)?.ok_or_else(|| {
                Error::not_found(format!("no entry {name:?} in {}", shown_dir(&path[..i])))
            })?;
        }
        Ok(node)
    }

    /// The directory at `path` under `root`.
    pub async fn resolve_dir(&self, root: &DirCap, path: &[String]) -> Result<DirCap> {
        let node = self.resolve(root, path).await?;
        node.dir_cap()
            .cloned()
            .ok_or_else(|| Error::invalid_input(format!("{} is not a directory", join(path))))
    }

    /// The directory at `path` under `root`, made (with every missing
    /// directory on the way) when missing. A directory another client
    /// makes at the same moment is the one used: both see the same one.
    pub async fn mkdir_p(
        &self,
        root: &DirCap,
        path: &[String],
        format: MutableFormat,
    ) -> Result<DirCap> {
        let mut here = root.clone();
        for (i, name) in path.iter().enumerate() {
            let dir = self
                .read(&here)
                .await
                .map_err(|e| e.context(format!("reading {}", shown_dir(&path[..i]))))?;
            here = match dir.node(name)? {
                Some(n) => n.dir_cap().cloned().ok_or_else(|| {
                    Error::already_exists(format!(
                        "{} exists and is not a directory",
                        join(&path[..=i])
                    ))
                })?,
                None => self.add_new_dir(&here, name, format).await?,
            };
        }
        Ok(here)
    }

    /// Make an empty directory and link it as `name` in `parent`, unless
    /// a directory of that name appears first: then that one.
    async fn add_new_dir(
        &self,
        parent: &DirCap,
        name: &str,
        format: MutableFormat,
    ) -> Result<DirCap> {
        let made = self.create(format, Vec::new()).await?;
        let node = Node::from_cap(Cap::Dir(made.clone()));
        let name_owned = name.to_string();
        self.modify(parent, move |dir, _| {
            if let Some(existing) = dir.node(&name_owned)? {
                return existing.dir_cap().cloned().ok_or_else(|| {
                    Error::already_exists(format!("{name_owned} exists and is not a directory"))
                });
            }
            dir.set(&name_owned, node.clone(), None, Replace::Never, now())?;
            Ok(made.clone())
        })
        .await
    }

    /// Link `node` as `name` in `dir`.
    pub async fn add(
        &self,
        dir: &DirCap,
        name: &str,
        node: Node,
        metadata: Option<Metadata>,
        replace: Replace,
    ) -> Result<()> {
        let name = normalize_name(name)?;
        self.modify(dir, move |d, first| {
            if !first && replace != Replace::Always {
                // Our own earlier try may have linked it already.
                if let Some(e) = d.get(&name)
                    && e.read_cap() == node.read.as_ref()
                {
                    return Ok(());
                }
            }
            d.set(&name, node.clone(), metadata.clone(), replace, now())
        })
        .await
    }

    /// Unlink `name` from `dir`; the node it linked.
    pub async fn remove(&self, dir: &DirCap, name: &str) -> Result<Option<Node>> {
        let name = normalize_name(name)?;
        self.modify(dir, move |d, first| {
            let node = d.node(&name)?;
            match d.remove(&name) {
                Ok(_) => Ok(node),
                // Our own earlier try may have removed it.
                Err(e) if e.kind() == ErrorKind::NotFound && !first => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Move the entry `from_name` of `from` to `to_name` in `to` (the
    /// same directory or another). Within one directory this is one
    /// change; across two it links first and unlinks second, so a crash
    /// between leaves the entry in both, never in neither.
    pub async fn rename(
        &self,
        from: &DirCap,
        from_name: &str,
        to: &DirCap,
        to_name: &str,
        replace: Replace,
    ) -> Result<()> {
        let from_name = normalize_name(from_name)?;
        let to_name = normalize_name(to_name)?;
        if from == to {
            if from_name == to_name {
                return Ok(());
            }
            return self
                .modify(from, move |d, first| {
                    let Some(node) = d.node(&from_name)? else {
                        if !first && d.get(&to_name).is_some() {
                            return Ok(());
                        }
                        return Err(Error::not_found(format!("no entry {from_name:?}")));
                    };
                    let metadata = d.get(&from_name).map(|e| e.metadata().clone());
                    d.set(&to_name, node, metadata, replace, now())?;
                    d.remove(&from_name)?;
                    Ok(())
                })
                .await;
        }
        let dir = self.read(from).await?;
        let node = dir
            .node(&from_name)?
            .ok_or_else(|| Error::not_found(format!("no entry {from_name:?}")))?;
        let metadata = dir.get(&from_name).map(|e| e.metadata().clone());
        self.add(to, &to_name, node, metadata, replace).await?;
        self.remove(from, &from_name).await?;
        Ok(())
    }
}

/// `the directory a/b/` (or `the top directory`) for messages.
fn shown_dir(path: &[String]) -> String {
    if path.is_empty() {
        "the top directory".into()
    } else {
        format!("{}/", join(path))
    }
}
