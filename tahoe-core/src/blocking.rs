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
