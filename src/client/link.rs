//! A client's link to one storage server: connected in the background,
//! never on an operation's path.
//!
//! Each known server has a [`Link`] and a task that keeps it up: it
//! connects, and after a failure waits (exponential backoff, from 250 ms
//! to ten seconds) before trying again. An operation takes only the servers
//! that are up. A server whose call fails with `Unavailable` or `Timeout`
//! (it missed its deadline) is down for placement from then on: its task
//! asks it for its version until it answers, and only then is it up again.
//! So a dead, silent or black-hole server costs an operation nothing,
//! beyond the one call that found it out.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tahoe_core::protocol::transport::Transport;
use tahoe_core::protocol::{
    StorageCarrier, StorageClient, StorageRequest, StorageResponse, StorageService, serve_storage,
};
use tahoe_core::{ErrorKind, Result};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause between probes of a server that is down: a server
/// whose host comes back is used again within about this (the transport's
/// own redial pace is the same), for one small call every ten seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a health check waits for a server's version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a link stands.
#[derive(Clone)]
enum State {
    /// Never tried yet, or its first attempt is under way.
    First,
    /// Connected and answering.
    Up(Arc<dyn StorageService>),
    /// Unreachable, or failed a call; retried in the background.
    Down {
        /// The connection, when there is one (the server missed a call).
        service: Option<Arc<dyn StorageService>>,
        why: String,
    },
}

/// One server's link.
pub struct Link {
    address: String,
    state: Mutex<State>,
    /// Woken when the link goes down (its task probes) or changes at all
    /// (waiters for first attempts look again).
    changed: tokio::sync::Notify,
    last_change: Mutex<Instant>,
    started: std::sync::atomic::AtomicBool,
}

impl Link {
    /// A link to `address`, its first attempt not made yet: call
    /// [`Link::start`] from within a runtime.
    pub fn new(address: String) -> Arc<Link> {
        Arc::new(Link {
            address,
            state: Mutex::new(State::First),
            changed: tokio::sync::Notify::new(),
            last_change: Mutex::new(Instant::now()),
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Start the task that keeps this link up, once, when called within a
    /// runtime; the task ends when the link is dropped.
    pub fn start(self: &Arc<Self>, transport: &Arc<dyn Transport>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            runtime.spawn(keep_up(Arc::downgrade(self), transport.clone()));
        }
    }

    fn get(&self) -> Option<State> {
        self.state.lock().ok().map(|s| s.clone())
    }

    fn set(&self, state: State) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
        if let Ok(mut t) = self.last_change.lock() {
            *t = Instant::now();
        }
        self.changed.notify_waiters();
    }

    /// The server's service when it is up.
    pub fn up(self: &Arc<Self>) -> Option<Arc<dyn StorageService>> {
        match self.get()? {
            State::Up(service) => Some(Arc::new(StorageClient(Watched {
                inner: service,
                link: Arc::downgrade(self),
            }))),
            _ => None,
        }
    }

    /// Whether its first attempt has yet to end.
    pub fn first_pending(&self) -> bool {
        matches!(self.get(), Some(State::First))
    }

    /// When it last changed state.
    pub fn last_change(&self) -> Instant {
        self.last_change
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| Instant::now())
    }

    /// Why it is down, if it is.
    pub fn down_because(&self) -> Option<String> {
        match self.get()? {
            State::Down { why, .. } => Some(why),
            _ => None,
        }
    }

    /// A call to the server failed: down for placement, when the failure
    /// says it is unreachable or missed its deadline.
    fn failed(&self, kind: ErrorKind, why: &str) {
        if !matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout) {
            return;
        }
        let Some(State::Up(service)) = self.get() else {
            return;
        };
        tracing::info!("storage server at {} is down for now: {why}", self.address);
        self.set(State::Down {
            service: Some(service),
            why: why.to_string(),
        });
    }
}

/// The task behind a link: connect, then watch; after a failure, back off
/// and probe until the server answers.
async fn keep_up(link: Weak<Link>, transport: Arc<dyn Transport>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(l) = link.upgrade() else { return };
        let state = l.get();
        let address = l.address.clone();
        drop(l);
        // A server reached once keeps its connection handle, which
        // reconnects by itself; only a server never reached is dialled.
        let known = match &state {
            Some(State::Down { service, .. }) => service.clone(),
            _ => None,
        };
        let reached: std::result::Result<Arc<dyn StorageService>, String> = match (state, known) {
            (Some(State::Up(_)), _) => {
                // Wait for a failure (or the link's end: checked every
                // minute), listening before looking again so that none is
                // missed.
                let Some(l) = link.upgrade() else { return };
                let failure = l.changed.notified();
                tokio::pin!(failure);
                failure.as_mut().enable();
                if matches!(l.get(), Some(State::Up(_))) {
                    let _ = tokio::time::timeout(MAX_BACKOFF, failure).await;
                }
                continue;
            }
            (_, Some(service)) => {
                match tokio::time::timeout(PROBE_TIMEOUT, service.version()).await {
                    Ok(Ok(_)) => Ok(service),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
                }
            }
            (_, None) => match transport.connect(&address).await {
                Ok(peer) => Ok(peer.storage),
                Err(e) => Err(e.to_string()),
            },
        };
        let Some(l) = link.upgrade() else { return };
        match reached {
            Ok(service) => {
                tracing::debug!("storage server at {address} is up");
                l.set(State::Up(service));
                backoff = FIRST_BACKOFF;
            }
            Err(why) => {
                let service = match l.get() {
                    Some(State::First) => {
                        tracing::debug!("storage server at {address} unreachable: {why}");
                        None
                    }
                    Some(State::Down { service, .. }) => service,
                    _ => None,
                };
                l.set(State::Down { service, why });
                drop(l);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A server's storage service that tells its link when a call shows the
/// server unreachable or late: the same for every call, so a carrier.
struct Watched {
    inner: Arc<dyn StorageService>,
    link: Weak<Link>,
}

#[async_trait]
impl StorageCarrier for Watched {
    async fn call(&self, request: StorageRequest) -> Result<StorageResponse> {
        let r = serve_storage(self.inner.as_ref(), request).await;
        if let (Err(e), Some(link)) = (&r, self.link.upgrade()) {
            link.failed(e.kind(), e.message());
        }
        r
    }
}
