//! Open files: reads of the ranges asked for, writes spooled privately
//! and uploaded on flush or close.
//!
//! A read fetches only the segments that hold the bytes asked for; a read
//! that continues where the last one ended starts a stream from there to
//! the end of the file, which runs up to [`FsConfig::read_ahead`] bytes
//! ahead of the reader (a bounded pipe: memory stays bounded whatever the
//! file's size). A read elsewhere drops the stream.
//!
//! The first write (or truncation) copies the file into a spool file in
//! the node's private spool directory, made 0600 and unlinked at once, so
//! nothing of it outlives the process; writes at any offset go there.
//! [`OpenFile::flush`] uploads the spool when it changed: a mutable file is
//! overwritten in place (its cap stays), anything else becomes a new
//! immutable file linked under the file's name, replacing the old entry.
//! A failed upload is the flush's error (and so `close`'s), and links
//! nothing. Several opens of one path for writing share one `OpenFile`, so
//! writes through any of them land in one spool.
//!
//! A new file written in order from its first byte (what `cp`, `sftp put`
//! and rsync do) has its convergent key hashed as the writes arrive, on a
//! thread beside them, so that its upload needs no first pass over the
//! spool; any other write or truncation drops that hash, and the upload
//! computes the key itself.
//!
//! [`FsConfig::read_ahead`]: super::tree::FsConfig::read_ahead

use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use tahoe_core::blocking::Beside;
use tahoe_core::client::immutable::upload::PrecomputedKey;
use tahoe_core::client::source::FileSource;
use tahoe_core::format::cap::Cap;
use tahoe_core::format::dirnode::{Metadata, Node};

use super::error::{FsError, FsResult};
use super::tree::{Fs, Kind, Stat};
use super::{Call, Transfer};
use crate::client::chunks;

/// How a file is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHow {
    /// For writing (and reading).
    pub write: bool,
    /// Made when missing.
    pub create: bool,
    /// With `create`: refused when it exists.
    pub exclusive: bool,
    /// Emptied.
    pub truncate: bool,
}

/// One open file (see the module docs).
pub struct OpenFile {
    fs: Arc<Fs>,
    /// Where it is linked: follows renames of it (or of a directory
    /// above it); `None` once unlinked or replaced while open, when what
    /// is written to it is dropped, as a deleted file's would be.
    path: Mutex<Option<Vec<String>>>,
    writing: bool,
    /// Opens not yet released.
    opens: AtomicUsize,
    /// Bytes in the file as this handle sees it.
    size: AtomicU64,
    mtime: Mutex<SystemTime>,
    /// What the file links to (`None`: new, not uploaded yet).
    node: Mutex<Option<Node>>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The file's contents once written to (unlinked, 0600).
    spool: Option<std::fs::File>,
    /// The spool differs from the grid.
    dirty: bool,
    stream: Option<Stream>,
    /// Where the last read from the grid ended.
    last_end: Option<u64>,
    /// Reads of this open, for the operations page.
    download: Option<Box<dyn Transfer>>,
    /// The convergent key of the spool's bytes, while they were written
    /// in order from the first.
    key: Option<KeyFold>,
}

/// A convergent key hashed beside in-order writes.
struct KeyFold {
    fold: Beside<Option<PrecomputedKey>>,
    /// Bytes fed: the next in-order write starts here.
    end: u64,
}

impl KeyFold {
    /// A fold for a file written from its first byte; `None` when the
    /// grid's keys are not convergent.
    fn start(fs: &Fs) -> Option<KeyFold> {
        let hasher = fs.grid.open_key_hasher().ok().flatten()?;
        Some(KeyFold {
            fold: Beside::start(hasher, |h, c| h.update(c), |h| h.finish()),
            end: 0,
        })
    }

    /// Feed the next bytes, in pieces of at most [`KeyFold::PIECE`]: the
    /// fold's queue holds [`Beside::QUEUE`] of them at most, whatever the
    /// size of the writes.
    fn add(&mut self, data: &[u8]) {
        for piece in data.chunks(Self::PIECE) {
            self.fold.add(&bytes::Bytes::copy_from_slice(piece));
        }
        self.end += data.len() as u64;
    }

    const PIECE: usize = 64 << 10;

    /// The key, when the bytes fed are the file's `size` bytes.
    async fn finish(self, size: u64) -> Option<PrecomputedKey> {
        if self.end != size {
            return None;
        }
        self.fold.finish().await.ok().flatten()
    }
}

/// How many bytes a stream keeps behind its position: the kernel sends a
/// file's read-ahead requests several at a time, and they can arrive out
/// of order; a request for bytes the stream already passed is answered
/// from these rather than by a new download.
const KEEP_BEHIND: usize = 4 << 20;

/// A download running ahead of sequential reads.
struct Stream {
    /// Where the next byte from `rx` is in the file.
    pos: u64,
    /// The chunks the download wrote, in order ([`chunks`]).
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    /// What is left of the chunk being taken from.
    front: Bytes,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The last bytes taken, in order, ending at `pos`: slices of the
    /// chunks received, not copies.
    behind: std::collections::VecDeque<Bytes>,
    behind_len: usize,
}

impl Stream {
    /// The largest chunk the download hands over at once: a segment of
    /// the default size, so that `ahead / CHUNK` chunks hold `ahead` bytes
    /// of such a file.
    const CHUNK: usize = 128 << 10;

    /// Start downloading `range` of `node` at most `ahead` bytes ahead of
    /// the reads.
    fn start(fs: Arc<Fs>, node: Node, range: std::ops::Range<u64>, ahead: usize) -> Stream {
        let (mut tx, rx) = chunks::channel(ahead / Self::CHUNK, Self::CHUNK, |b| b);
        let pos = range.start;
        let task = tokio::spawn(async move { fetch(&fs, &node, range, &mut tx).await });
        Stream {
            pos,
            rx,
            front: Bytes::new(),
            task,
            behind: std::collections::VecDeque::new(),
            behind_len: 0,
        }
    }

    /// Where the bytes kept behind begin.
    fn behind_start(&self) -> u64 {
        self.pos - self.behind_len as u64
    }

    /// Take `n` bytes from the download, into `out` if given (`n` of
    /// them), keeping them behind; fewer only at its end, which is then
    /// an error.
    async fn take(&mut self, n: usize, mut out: Option<&mut [u8]>) -> std::io::Result<()> {
        let mut done = 0;
        while done < n {
            if self.front.is_empty() {
                self.front = self
                    .rx
                    .recv()
                    .await
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                continue;
            }
            let piece = self.front.split_to((n - done).min(self.front.len()));
            if let Some(out) = out.as_deref_mut() {
                out[done..done + piece.len()].copy_from_slice(&piece);
            }
            done += piece.len();
            self.pos += piece.len() as u64;
            self.behind_len += piece.len();
            self.behind.push_back(piece);
        }
        while self.behind_len > KEEP_BEHIND && self.behind.len() > 1 {
            if let Some(old) = self.behind.pop_front() {
                self.behind_len -= old.len();
            }
        }
        Ok(())
    }

    /// Copy the bytes kept behind from `offset` into `out` (all of it must
    /// lie between `behind_start` and `pos`).
    fn copy_behind(&self, offset: u64, out: &mut [u8]) {
        let mut at = self.behind_start();
        let end = offset + out.len() as u64;
        for chunk in &self.behind {
            let (c_start, c_end) = (at, at + chunk.len() as u64);
            let (from, to) = (offset.max(c_start), end.min(c_end));
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&chunk[(from - c_start) as usize..(to - c_start) as usize]);
            }
            at = c_end;
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fs {
    /// Open the file at `path`.
    pub async fn open(self: &Arc<Self>, path: &[String], how: OpenHow) -> FsResult<Arc<OpenFile>> {
        let r = self.open_uncounted(path, how).await;
        self.counted(Call::Open, r)
    }

    async fn open_uncounted(
        self: &Arc<Self>,
        path: &[String],
        how: OpenHow,
    ) -> FsResult<Arc<OpenFile>> {
        if how.write && self.read_only() {
            return Err(FsError::ReadOnly("this file system is read-only".into()));
        }
        if path.is_empty() {
            return Err(FsError::IsDir);
        }
        let found = match self.stat_uncounted(path).await {
            Ok(s) => Some(s),
            Err(FsError::NotFound) if how.create => None,
            Err(e) => return Err(e),
        };
        match &found {
            Some(_) if how.create && how.exclusive => return Err(FsError::Exists),
            Some(s) if s.kind == Kind::Dir => return Err(FsError::IsDir),
            Some(s) if how.write && !s.writable => {
                return Err(FsError::ReadOnly("this directory is read-only".into()));
            }
            Some(_) => {}
            None => {
                let parent = &path[..path.len() - 1];
                self.writable_dir(parent).await?;
            }
        }
        if !how.write {
            let stat = found.ok_or(FsError::NotFound)?;
            return Ok(Arc::new(OpenFile::new(self.clone(), path, false, &stat)));
        }
        let fresh = found.is_none();
        let stat = found.unwrap_or(Stat {
            kind: Kind::File,
            size: 0,
            mtime: SystemTime::now(),
            node: None,
            writable: true,
            metadata: None,
            version: None,
        });
        let mine = Arc::new(OpenFile::new(self.clone(), path, true, &stat));
        let file = self.register(mine.clone());
        if !Arc::ptr_eq(&file, &mine) {
            file.opens.fetch_add(1, Ordering::AcqRel);
        }
        if how.truncate || fresh {
            file.truncate(0).await?;
        }
        Ok(file)
    }

    /// Set the size and modification time of the file at `path` (through
    /// `open`, its open file, when that was opened for writing), as
    /// `setattr` and SFTP's `setstat` ask. Modes and owners are not kept:
    /// the front ends accept and ignore them.
    pub async fn set_attrs(
        self: &Arc<Self>,
        path: &[String],
        open: Option<&OpenFile>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
    ) -> FsResult<()> {
        if let Some(len) = size {
            match open {
                Some(f) if f.writing() => f.truncate(len).await?,
                _ => {
                    let how = OpenHow {
                        write: true,
                        truncate: len == 0,
                        ..OpenHow::default()
                    };
                    let f = self.open(path, how).await?;
                    let r = f.truncate(len).await;
                    let closed = f.release(r.is_ok()).await;
                    r?;
                    closed?;
                }
            }
        }
        if let Some(t) = mtime {
            self.set_mtime(path, t).await?;
        }
        Ok(())
    }

    /// What `path` names as `open` (when given) sees it: an open file
    /// being written shows its spool, any other the grid's entry.
    pub async fn stat_through(&self, path: &[String], open: Option<&OpenFile>) -> FsResult<Stat> {
        match open {
            Some(f) if f.writing() => Ok(f.stat()),
            _ => self.stat(path).await,
        }
    }
}

impl OpenFile {
    fn new(fs: Arc<Fs>, path: &[String], writing: bool, stat: &Stat) -> OpenFile {
        OpenFile {
            fs,
            path: Mutex::new(Some(path.to_vec())),
            writing,
            opens: AtomicUsize::new(1),
            size: AtomicU64::new(stat.size),
            mtime: Mutex::new(stat.mtime),
            node: Mutex::new(stat.node.clone()),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Where it is now (empty once unlinked).
    pub fn path(&self) -> Vec<String> {
        self.path
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_default()
    }

    /// It moved to `to`, or (`None`) was unlinked or replaced.
    pub(super) fn moved(&self, to: Option<Vec<String>>) {
        if let Ok(mut p) = self.path.lock() {
            *p = to;
        }
    }

    fn detached(&self) -> bool {
        self.path.lock().map(|p| p.is_none()).unwrap_or(true)
    }

    /// Whether it was opened for writing.
    pub fn writing(&self) -> bool {
        self.writing
    }

    fn name(&self) -> String {
        self.path().join("/")
    }

    /// Its attributes as this open sees them.
    pub fn stat(&self) -> Stat {
        let node = self.node();
        Stat {
            kind: Kind::File,
            size: self.size.load(Ordering::Acquire),
            mtime: self
                .mtime
                .lock()
                .map(|t| *t)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            node,
            writable: self.writing,
            metadata: None,
            version: None,
        }
    }

    fn node(&self) -> Option<Node> {
        self.node.lock().ok().and_then(|n| n.clone())
    }

    /// Its size now.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Set its modification time; whether the entry on the grid needs it
    /// too (the file is uploaded and unchanged since), else its next
    /// upload carries it.
    pub(super) async fn set_mtime(&self, t: SystemTime) -> bool {
        // Under the state's lock: never between an upload's reading of
        // the time and its end.
        let st = self.state.lock().await;
        if let Ok(mut m) = self.mtime.lock() {
            *m = t;
        }
        !st.dirty && self.node().is_some()
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    pub async fn read(&self, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let r = self.read_uncounted(offset, len).await;
        self.fs.counted(Call::Read, r)
    }

    async fn read_uncounted(&self, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let mut st = self.state.lock().await;
        let size = self.size();
        if offset >= size || len == 0 {
            return Ok(Vec::new());
        }
        let end = size.min(offset.saturating_add(u64::from(len)));
        let mut buf = vec![0u8; (end - offset) as usize];
        if let Some(spool) = &st.spool {
            spool.read_exact_at(&mut buf, offset)?;
            return Ok(buf);
        }
        if st.download.is_none() {
            st.download = Some(self.fs.journal.transfer(
                self.fs.via,
                false,
                &self.name(),
                Some(size),
            ));
        }
        self.read_grid(&mut st, offset, &mut buf, size).await?;
        if let Some(d) = &st.download {
            d.add(buf.len() as u64);
        }
        Ok(buf)
    }

    async fn read_grid(
        &self,
        st: &mut State,
        offset: u64,
        buf: &mut [u8],
        size: u64,
    ) -> FsResult<()> {
        let node = self.node().ok_or(FsError::NotFound)?;
        let ahead = self.fs.config.read_ahead.max(1 << 16);
        let end = offset + buf.len() as u64;
        if let Some(s) = st.stream.as_mut()
            && s.behind_start() <= offset
            && offset <= s.pos + ahead as u64
        {
            // Bytes already passed come from behind; the rest from the
            // stream, after skipping (and keeping) what lies between.
            let head = s.pos.min(end).saturating_sub(offset) as usize;
            s.copy_behind(offset, &mut buf[..head]);
            if head < buf.len() {
                let skip = offset.saturating_sub(s.pos) as usize;
                if skip > 0 && s.take(skip, None).await.is_err() {
                    return Err(self.ended_early(st).await);
                }
                let rest = buf.len() - head;
                if s.take(rest, Some(&mut buf[head..])).await.is_err() {
                    return Err(self.ended_early(st).await);
                }
            }
            st.last_end = Some(end);
            return Ok(());
        }
        st.stream = None;
        if st.last_end == Some(offset) && end < size {
            // Sequential: stream the rest, up to `ahead` bytes in advance.
            let mut s = Stream::start(self.fs.clone(), node, offset..size, ahead);
            let taken = s.take(buf.len(), Some(buf)).await;
            st.stream = Some(s);
            if taken.is_err() {
                return Err(self.ended_early(st).await);
            }
            st.last_end = Some(end);
            return Ok(());
        }
        let mut out = Vec::with_capacity(buf.len());
        fetch(&self.fs, &node, offset..end, &mut out).await?;
        if out.len() != buf.len() {
            return Err(FsError::Grid(anyhow::anyhow!(
                "the grid returned {} bytes where {} were asked for",
                out.len(),
                buf.len()
            )));
        }
        buf.copy_from_slice(&out);
        st.last_end = Some(end);
        Ok(())
    }

    /// The stream's download ended before the bytes asked for: why.
    async fn ended_early(&self, st: &mut State) -> FsError {
        let why = match st.stream.take() {
            Some(mut s) => match (&mut s.task).await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => anyhow::anyhow!("the file ended early"),
                Err(e) => anyhow::anyhow!("the download stopped: {e}"),
            },
            None => anyhow::anyhow!("no stream"),
        };
        FsError::from(why)
    }

    /// Write `data` at `offset` (past the end: the gap reads as zeros).
    pub async fn write(&self, offset: u64, data: &[u8]) -> FsResult<u32> {
        let r = async {
            if !self.writing {
                return Err(FsError::Invalid("the file is not open for writing".into()));
            }
            let mut st = self.state.lock().await;
            let spool = self.spooled(&mut st, true).await?;
            spool.write_all_at(data, offset)?;
            st.key = match st.key.take() {
                Some(mut k) if k.end == offset => {
                    k.add(data);
                    Some(k)
                }
                _ => None,
            };
            let end = offset + data.len() as u64;
            self.size.fetch_max(end, Ordering::AcqRel);
            self.touch();
            st.dirty = true;
            Ok(data.len() as u32)
        }
        .await;
        self.fs.counted(Call::Write, r)
    }

    /// Cut or extend the file to `len` bytes.
    pub async fn truncate(&self, len: u64) -> FsResult<()> {
        if !self.writing {
            return Err(FsError::Invalid("the file is not open for writing".into()));
        }
        let mut st = self.state.lock().await;
        let spool = self.spooled(&mut st, len > 0).await?;
        spool.set_len(len)?;
        if st.key.as_ref().is_some_and(|k| k.end != len) {
            st.key = None;
        }
        self.size.store(len, Ordering::Release);
        self.touch();
        st.dirty = true;
        Ok(())
    }

    fn touch(&self) {
        if let Ok(mut m) = self.mtime.lock() {
            *m = SystemTime::now();
        }
    }

    /// The spool, made on first use: with the file's contents copied in
    /// when `keep`.
    async fn spooled<'a>(&self, st: &'a mut State, keep: bool) -> FsResult<&'a std::fs::File> {
        if st.spool.is_none() {
            st.stream = None;
            let file = new_spool(&self.fs.spool)?;
            let size = self.size();
            if keep
                && size > 0
                && let Some(node) = self.node()
            {
                let mut out = tokio::fs::File::from_std(file.try_clone()?);
                fetch(&self.fs, &node, 0..size, &mut out).await?;
                tokio::io::AsyncWriteExt::flush(&mut out).await?;
            } else {
                self.size.store(0, Ordering::Release);
                // A mutable file is overwritten under its own keys.
                let mutable = self
                    .node()
                    .is_some_and(|n| matches!(n.known(), Some(Cap::SskWrite(_))));
                st.key = if mutable {
                    None
                } else {
                    KeyFold::start(&self.fs)
                };
            }
            st.spool = Some(file);
        }
        st.spool
            .as_ref()
            .ok_or_else(|| FsError::Grid(anyhow::anyhow!("no spool")))
    }

    /// Upload what was written, if anything was (see the module docs).
    pub async fn flush(&self) -> FsResult<()> {
        let mut st = self.state.lock().await;
        if !st.dirty || self.detached() {
            return Ok(());
        }
        let r = self.upload(&mut st).await;
        if r.is_ok() {
            st.dirty = false;
        }
        self.fs.counted(Call::Upload, r)
    }

    async fn upload(&self, st: &mut State) -> FsResult<()> {
        let spool = st
            .spool
            .as_ref()
            .ok_or_else(|| FsError::Grid(anyhow::anyhow!("nothing was written")))?;
        let size = self.size();
        let log = self
            .fs
            .journal
            .transfer(self.fs.via, true, &self.name(), Some(size));
        let key = st.key.take();
        let r = async {
            let source = Arc::new(FileSource::new(spool.try_clone()?)?);
            let old = self.node();
            match old.as_ref().and_then(Node::known) {
                Some(Cap::SskWrite(w)) => {
                    self.fs.grid.overwrite(w, source).await?;
                    let path = self.path();
                    let (name, parent) = path
                        .split_last()
                        .ok_or_else(|| anyhow::anyhow!("no name"))?;
                    self.fs.edit_cached(parent, |e| {
                        if let Some(s) = e.get_mut(name) {
                            s.size = size;
                        }
                    });
                }
                _ => {
                    let key = match key {
                        Some(k) => k.finish(size).await,
                        None => None,
                    };
                    let cap = self.fs.grid.put_with(source, key).await?;
                    let node = Node::from_cap(cap);
                    let stat = Stat {
                        node: Some(node.clone()),
                        ..self.stat()
                    };
                    self.fs
                        .link(&self.path(), node.clone(), stat, Metadata::new())
                        .await?;
                    if let Ok(mut n) = self.node.lock() {
                        *n = Some(node);
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        match &r {
            Ok(()) => {
                log.add(size);
                log.end(Ok(()));
            }
            Err(e) => log.end(Err(e)),
        }
        r.map_err(FsError::from)
    }

    /// One open of the file ends: the last uploads what is left to upload
    /// when `upload` (a front end's close), or drops it (a client gone
    /// without closing: nothing is linked), and frees the spool.
    pub async fn release(&self, upload: bool) -> FsResult<()> {
        if self.opens.fetch_sub(1, Ordering::AcqRel) != 1 {
            return Ok(());
        }
        let r = if upload && self.writing {
            self.flush().await
        } else {
            Ok(())
        };
        if self.writing {
            self.fs.unregister(self);
        }
        let mut st = self.state.lock().await;
        if let Some(d) = st.download.take() {
            d.end(Ok(()));
        }
        st.stream = None;
        st.spool = None;
        st.key = None;
        r
    }
}

/// A new spool file in `dir`: 0600, unlinked at once.
fn new_spool(dir: &std::path::Path) -> FsResult<std::fs::File> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| FsError::Grid(anyhow::anyhow!("random: {e}")))?;
    let path = dir.join(format!("fs-{}", tahoe_core::base32::encode(&b)));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Bytes `range` of the file `node` links to, into `out`.
pub(crate) async fn fetch(
    fs: &Fs,
    node: &Node,
    range: std::ops::Range<u64>,
    out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    match node.known() {
        Some(Cap::Chk(c)) => {
            fs.grid.get(c, range, out).await?;
        }
        Some(Cap::Lit(l)) => {
            let len = l.data.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            out.write_all(&l.data[start as usize..end as usize]).await?;
        }
        Some(Cap::SskWrite(w)) => {
            fs.grid.get_mutable(&w.read_cap(), range, out).await?;
        }
        Some(Cap::SskRead(r)) => {
            fs.grid.get_mutable(r, range, out).await?;
        }
        _ => anyhow::bail!("this entry's kind of cap cannot be read as a file"),
    }
    out.flush().await?;
    Ok(())
}
