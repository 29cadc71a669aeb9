//! Signing keys made ahead of time: RSA key generation takes hundreds of
//! milliseconds, so a pool keeps a few ready, refilled by a thread of the
//! lowest priority.

use std::sync::{Arc, Mutex};

use crate::client::mutable::rsa::SigningKey;
use crate::error::{Error, Result};

/// Run the calling thread at the lowest CPU priority (Linux nice 19), so
/// that refilling the pool never slows the operations in progress.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority(2) only changes the scheduling of the calling
    // thread (on Linux, PRIO_PROCESS with who = 0 means this thread).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// A few signing keys made ahead of time on a background thread, so that
/// creating a mutable file does not wait for RSA key generation.
///
/// [`KeyPool::take`] hands out a pooled key when there is one (and starts a
/// refill, at the lowest CPU priority), or makes one on the spot when the
/// pool is empty. Keys never
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
}
