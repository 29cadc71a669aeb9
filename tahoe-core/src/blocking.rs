//! Blocking work called from async code.
//!
//! Two ways, for two kinds of work:
//!
//! - [`on_pool`]: tokio's blocking pool, for work that may take long
//!   (fsyncs, renames, directory changes on a disk). The caller's task
//!   waits; the other futures it drives go on.
//! - [`in_place`]: on the calling worker thread, for short work that is
//!   mostly a page-cache copy (a read or write of data). On a
//!   multi-threaded runtime tokio first hands the worker's queued tasks to
//!   another thread (`block_in_place`), so nothing else waits but the
//!   caller's own task. This saves the two context switches of a hop to
//!   the pool and back, which on a storage node were most of the CPU after
//!   the copies themselves (measured on a 10-node grid, 2026-12-02). On a
//!   current-thread runtime, where that is not allowed, the work goes to
//!   the pool.
//!
//! And one for a fold over a stream's chunks that should not slow the
//! stream down: [`Beside`] runs it on a thread of the pool, beside the task
//! that feeds it (a convergent key or an MD5 hashed while a body is
//! spooled: on two cores the hash costs no time of its own).

use bytes::Bytes;

use crate::error::{Error, Result};

/// Run `f` on tokio's blocking pool.
pub async fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

/// Run `f`, short blocking work, in place on the calling worker thread
/// when the runtime allows it, else on the blocking pool.
pub async fn in_place<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(f);
    }
    on_pool(f).await
}

/// A fold over chunks (a hash, say) on a thread of the blocking pool,
/// beside the task that feeds it. At most [`Beside::QUEUE`] chunks wait;
/// a feeder that gets ahead waits too, off the runtime's other work.
pub struct Beside<T> {
    tx: Option<std::sync::mpsc::SyncSender<Bytes>>,
    done: tokio::task::JoinHandle<T>,
}

impl<T: Send + 'static> Beside<T> {
    /// Chunks queued at most.
    pub const QUEUE: usize = 64;

    /// Start folding chunks into `state` with `update`; [`Beside::finish`]
    /// gives `finish(state)`.
    pub fn start<S: Send + 'static>(
        mut state: S,
        update: impl Fn(&mut S, &[u8]) + Send + 'static,
        finish: impl FnOnce(S) -> T + Send + 'static,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(Self::QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            for chunk in rx {
                update(&mut state, &chunk);
            }
            finish(state)
        });
        Beside { tx: Some(tx), done }
    }

    /// Fold `chunk` next (a reference count, not a copy).
    pub fn add(&self, chunk: &Bytes) {
        use std::sync::mpsc::TrySendError;
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(c)) = tx.try_send(chunk.clone()) {
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
                let _ = tokio::task::block_in_place(|| tx.send(c));
            } else {
                let _ = tx.send(c);
            }
        }
    }

    /// The result, once every chunk added is folded in.
    pub async fn finish(mut self) -> Result<T> {
        self.tx = None;
        (&mut self.done)
            .await
            .map_err(|e| Error::internal(format!("a fold beside failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beside_folds_every_chunk_in_order() {
        let fold = Beside::start(
            Vec::new(),
            |v: &mut Vec<u8>, c| v.extend_from_slice(c),
            |v| v,
        );
        let mut want = Vec::new();
        // More chunks than the queue holds: the feeder waits, nothing is lost.
        for i in 0..(3 * Beside::<Vec<u8>>::QUEUE as u32) {
            let chunk = Bytes::from(i.to_be_bytes().to_vec());
            want.extend_from_slice(&chunk);
            fold.add(&chunk);
        }
        assert_eq!(fold.finish().await.unwrap(), want);
    }
}
