//! Uploads and downloads through the gateway, in progress and recently
//! done, for the status pages: what, how many bytes, how fast, how many
//! servers. Names are the file names people gave, never caps.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How many finished operations are kept for the status page.
const KEEP_DONE: usize = 100;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Upload,
    Download,
    /// A check, verify or repair (`t=check`).
    Check,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Upload => "upload",
            OpKind::Download => "download",
            OpKind::Check => "check",
        }
    }
}

/// Where an operation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpState {
    Running,
    Done,
    Failed(String),
}

/// One upload or download.
pub struct Op {
    pub id: u64,
    pub kind: OpKind,
    pub name: String,
    pub started_at: SystemTime,
    started: Instant,
    /// Bytes received (uploads) or sent (downloads) so far.
    bytes: AtomicU64,
    /// The whole size when known, else `u64::MAX`.
    size: AtomicU64,
    servers: AtomicU64,
    end: Mutex<Option<(Duration, OpState)>>,
    /// What it found, for people (a check's summary).
    outcome: Mutex<Option<String>>,
}

impl Op {
    pub fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }
    pub fn size(&self) -> Option<u64> {
        Some(self.size.load(Ordering::Relaxed)).filter(|s| *s != u64::MAX)
    }
    pub fn set_servers(&self, n: usize) {
        self.servers.store(n as u64, Ordering::Relaxed);
    }
    pub fn servers(&self) -> u64 {
        self.servers.load(Ordering::Relaxed)
    }
    /// Time taken so far, or in all once finished.
    pub fn elapsed(&self) -> Duration {
        match &*self.end.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((d, _)) => *d,
            None => self.started.elapsed(),
        }
    }
    pub fn state(&self) -> OpState {
        match &*self.end.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, s)) => s.clone(),
            None => OpState::Running,
        }
    }
    /// What it found, once it says.
    pub fn outcome(&self) -> Option<String> {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Bytes per second so far.
    pub fn speed(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.bytes() as f64 / secs
        } else {
            0.0
        }
    }
    fn finish(&self, state: OpState) {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        if end.is_none() {
            *end = Some((self.started.elapsed(), state));
        }
    }
}

/// An operation being tracked: finish it with [`Tracked::done`] or
/// [`Tracked::failed`]; dropped unfinished (the client went away) it is
/// recorded as cancelled.
pub struct Tracked(pub Arc<Op>);

impl Tracked {
    pub fn done(&self) {
        self.0.finish(OpState::Done);
    }
    /// Done, having found `outcome`.
    pub fn done_with(&self, outcome: String) {
        *self.0.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.done();
    }
    pub fn failed(&self, why: &anyhow::Error) {
        self.0.finish(OpState::Failed(format!("{why:#}")));
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.finish(OpState::Failed("cancelled".into()));
    }
}

/// The operations of one gateway.
#[derive(Default)]
pub struct Ops {
    inner: Mutex<(u64, VecDeque<Arc<Op>>)>,
}

impl Ops {
    /// Start tracking an operation.
    pub fn begin(&self, kind: OpKind, name: &str, size: Option<u64>) -> Tracked {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0 += 1;
        let op = Arc::new(Op {
            id: inner.0,
            kind,
            name: name.to_string(),
            started_at: SystemTime::now(),
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            size: AtomicU64::new(size.unwrap_or(u64::MAX)),
            servers: AtomicU64::new(0),
            end: Mutex::new(None),
            outcome: Mutex::new(None),
        });
        inner.1.push_front(op.clone());
        // Forget the oldest finished ones beyond what is kept.
        let mut done = 0;
        inner.1.retain(|o| {
            if o.state() == OpState::Running {
                return true;
            }
            done += 1;
            done <= KEEP_DONE
        });
        Tracked(op)
    }

    /// Every operation, newest first.
    pub fn list(&self) -> Vec<Arc<Op>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.iter().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Op>> {
        self.list().into_iter().find(|o| o.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_unfinished_is_cancelled_and_old_ones_are_forgotten() {
        let ops = Ops::default();
        let t = ops.begin(OpKind::Upload, "a.txt", None);
        t.0.add(10);
        let op = t.0.clone();
        assert_eq!(op.state(), OpState::Running);
        drop(t);
        assert_eq!(op.state(), OpState::Failed("cancelled".into()));
        let ok = ops.begin(OpKind::Download, "b", Some(5));
        ok.done();
        drop(ok);
        assert_eq!(ops.get(2).unwrap().state(), OpState::Done);
        for _ in 0..KEEP_DONE + 10 {
            ops.begin(OpKind::Upload, "x", None).done();
        }
        let running = ops.begin(OpKind::Upload, "still", None);
        assert_eq!(ops.list().len(), KEEP_DONE + 1);
        assert!(ops.list().iter().any(|o| o.id == running.0.id));
        assert!(ops.get(1).is_none(), "the oldest finished one is forgotten");
    }
}

/// The gateway's operations and statistics, as the journal of the
/// file-system front ends (`tahoe mount`, SFTP): their transfers appear on
/// the operations page named `fuse: PATH` or `sftp: PATH`, their calls in
/// `/statistics`.
#[derive(Default)]
pub struct FsJournal {
    pub(super) ops: Arc<Ops>,
    pub(super) stats: Arc<super::stats::Stats>,
}

struct FsTransfer {
    op: Tracked,
    upload: bool,
    stats: Arc<super::stats::Stats>,
}

impl crate::fs::Journal for FsJournal {
    fn call(&self, via: crate::fs::Frontend, call: crate::fs::Call, ok: bool) {
        self.stats.fs_call(via, call, ok);
    }

    fn transfer(
        &self,
        via: crate::fs::Frontend,
        upload: bool,
        name: &str,
        size: Option<u64>,
    ) -> Box<dyn crate::fs::Transfer> {
        let kind = if upload {
            OpKind::Upload
        } else {
            OpKind::Download
        };
        let op = self
            .ops
            .begin(kind, &format!("{}: {name}", via.as_str()), size);
        Box::new(FsTransfer {
            op,
            upload,
            stats: self.stats.clone(),
        })
    }
}

impl crate::fs::Transfer for FsTransfer {
    fn add(&self, n: u64) {
        self.op.0.add(n);
    }

    fn end(&self, outcome: Result<(), &anyhow::Error>) {
        match outcome {
            Ok(()) => {
                let bytes = self.op.0.bytes();
                if self.upload {
                    self.stats.uploaded(bytes);
                } else {
                    self.stats.downloaded(bytes);
                }
                self.op.done();
            }
            Err(e) => self.op.failed(e),
        }
    }
}
