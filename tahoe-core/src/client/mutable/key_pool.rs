//! Signing keys made ahead of time: RSA key generation takes hundreds of
//! milliseconds, so a pool keeps a few ready, refilled by a thread that
//! runs only when the CPU is otherwise idle.

use std::sync::{Arc, Mutex};

use crate::client::mutable::rsa::SigningKey;
use crate::error::{Error, Result};

/// Run the calling thread only when the CPU has nothing else to do
/// (Linux `SCHED_IDLE`), so that refilling the pool never slows the
/// operations in progress.
///
/// Decision: `SCHED_IDLE`, not only nice 19. A nice-19 thread still holds
/// a core for its whole time slice once it has it, and a storage call or
/// an answer that wakes meanwhile waits for the slice to end: measured on
/// a 10-node grid on two cores (2026-12-07), the refill after a create
/// took a third of the CPU of the overwrite that followed it, in the very
/// phase where the client and ten storage nodes pass the shares along. A
/// `SCHED_IDLE` thread is preempted as soon as any other thread wakes.
/// It is not starved for good under load (it keeps a small share of the
/// CPU), and [`KeyPool::take`] makes a key at normal priority when the
/// pool is empty. Nice 19 stays as the fallback where the policy is
/// refused.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler(2) and setpriority(2) with pid/who 0 only
    // change the scheduling of the calling thread; the parameter is a
    // plain struct read by the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}

/// A few signing keys made ahead of time on a background thread, so that
/// creating a mutable file does not wait for RSA key generation.
///
/// [`KeyPool::take`] hands out a pooled key when there is one (and starts a
/// refill, on a thread that runs only when the CPU is otherwise idle), or
/// makes one on the spot when the pool is empty. Keys never
/// leave the process: a pooled key is as secret as any other.
#[derive(Clone)]
pub struct KeyPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    target: usize,
    state: Mutex<PoolState>,
}

struct PoolState {
    keys: Vec<SigningKey>,
    refilling: bool,
}

impl KeyPool {
    /// A pool that keeps `target` keys ready and starts filling now.
    pub fn new(target: usize) -> Self {
        let pool = KeyPool {
            inner: Arc::new(PoolInner {
                target,
                state: Mutex::new(PoolState {
                    keys: Vec::new(),
                    refilling: false,
                }),
            }),
        };
        pool.refill();
        pool
    }

    /// Add a key made elsewhere (a test's fixed keys, say): taken before
    /// the pool makes more.
    pub fn put(&self, key: SigningKey) {
        self.lock().keys.push(key);
    }

    /// Keys ready now.
    pub fn ready(&self) -> usize {
        self.lock().keys.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a background refill unless one runs or the pool is full.
    fn refill(&self) {
        {
            let mut s = self.lock();
            if s.refilling || s.keys.len() >= self.inner.target {
                return;
            }
            s.refilling = true;
        }
        // A weak handle: a dropped pool stops refilling.
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("rsa-keygen".into())
            .spawn(move || {
                lower_priority();
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let key = SigningKey::generate();
                    let mut s = inner.state.lock().unwrap_or_else(|p| p.into_inner());
                    match key {
                        Ok(k) => s.keys.push(k),
                        Err(e) => {
                            tracing::warn!("background key generation failed: {e}");
                            s.refilling = false;
                            return;
                        }
                    }
                    if s.keys.len() >= inner.target {
                        s.refilling = false;
                        return;
                    }
                }
            });
        if spawned.is_err() {
            self.lock().refilling = false;
        }
    }

    /// A key: from the pool when one is ready, else made now (off the
    /// async runtime).
    pub async fn take(&self) -> Result<SigningKey> {
        let pooled = self.lock().keys.pop();
        self.refill();
        match pooled {
            Some(k) => Ok(k),
            None => tokio::task::spawn_blocking(SigningKey::generate)
                .await
                .map_err(|e| Error::internal(format!("key generation task: {e}")))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pool_hands_out_distinct_keys_and_refills() {
        let pool = KeyPool::new(2);
        let a = pool.take().await.expect("a");
        let b = pool.take().await.expect("b");
        assert_ne!(a.der(), b.der());
        for _ in 0..200 {
            if pool.ready() == 2 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the pool did not refill in 10 s");
    }

    /// The refill thread has the `SCHED_IDLE` policy (field 41 of its
    /// `/proc` stat line), which lets any other thread that wakes take
    /// its core at once.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_refill_runs_only_when_the_cpu_is_otherwise_idle() {
        const SCHED_IDLE: u32 = 5;
        // Enough keys that the thread is still at work when looked for.
        let pool = KeyPool::new(64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            for task in std::fs::read_dir("/proc/self/task")
                .expect("tasks")
                .flatten()
            {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                if comm.trim() != "rsa-keygen" {
                    continue;
                }
                let stat = std::fs::read_to_string(task.path().join("stat")).expect("stat");
                // Fields after the command name (which is in parentheses)
                // start at field 3.
                let rest = &stat[stat.rfind(')').expect("comm") + 1..];
                let policy: u32 = rest
                    .split_whitespace()
                    .nth(41 - 3)
                    .and_then(|f| f.parse().ok())
                    .expect("policy field");
                assert_eq!(policy, SCHED_IDLE, "the refill thread's policy");
                drop(pool);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("no refill thread was seen");
    }
}
