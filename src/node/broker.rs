//! The storage broker: what a client knows about the grid.
//!
//! It subscribes to the queen (long polls, reconnecting with backoff when
//! the queen is away), keeps every valid announcement it has seen, and
//! saves them to `BASEDIR/servers.json` so that a client started while the
//! queen is down still knows where to go. Connections to storage servers
//! are made when first needed and kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tahoe_core::immutable::sink::ServerRef;
use tahoe_core::protocol::{Announcement, QueenAddress, QueenService};
use tahoe_core::transport::{RemotePeer, Transport};
use tahoe_core::{Error, Result};

use super::announce::{AnnouncementBody, check};

/// Where an address points on the network: what follows the key (`@`), so
/// that two ids announced at one place count as one machine.
fn location_of(address: Option<&str>) -> String {
    let a = address.unwrap_or_default();
    a.rsplit_once('@').map(|(_, l)| l).unwrap_or(a).to_string()
}

/// How long one subscription poll waits at the queen.
const POLL_WAIT_MS: u64 = 25_000;

struct Known {
    body: AnnouncementBody,
    announcement: Announcement,
    peer: Option<RemotePeer>,
}

/// A client's view of the grid.
pub struct Broker {
    transport: Arc<dyn Transport>,
    queen_address: QueenAddress,
    queen: tokio::sync::Mutex<Option<Arc<dyn QueenService>>>,
    known: Mutex<BTreeMap<String, Known>>,
    queen_connected: AtomicBool,
    /// Woken when the queen answers again after being away (it may have
    /// restarted and forgotten us: storage servers re-announce at once).
    pub queen_back: tokio::sync::Notify,
    cache: Option<PathBuf>,
}

impl Broker {
    /// A broker that learns from the queen at `queen_address`, remembering
    /// what it learns in `cache` (loaded now if present).
    pub fn new(
        transport: Arc<dyn Transport>,
        queen_address: QueenAddress,
        cache: Option<PathBuf>,
    ) -> Self {
        let b = Broker {
            transport,
            queen_address,
            queen: tokio::sync::Mutex::new(None),
            known: Mutex::new(BTreeMap::new()),
            queen_connected: AtomicBool::new(false),
            queen_back: tokio::sync::Notify::new(),
            cache,
        };
        if let Some(path) = &b.cache
            && let Ok(text) = std::fs::read(path)
            && let Ok(list) = serde_json::from_slice::<Vec<Announcement>>(&text)
        {
            b.learn(list, false);
        }
        b
    }

    /// The queen's own broker: it learns from the queen's service in the
    /// same process instead of over the network.
    pub fn local(
        transport: Arc<dyn Transport>,
        queen_address: QueenAddress,
        queen: Arc<dyn QueenService>,
    ) -> Self {
        let b = Broker::new(transport, queen_address, None);
        if let Ok(mut q) = b.queen.try_lock() {
            *q = Some(queen);
        }
        b
    }

    /// Whether the last exchange with the queen worked.
    pub fn queen_connected(&self) -> bool {
        self.queen_connected.load(Ordering::Relaxed)
    }

    /// The queen's service, connecting if needed.
    pub async fn queen(&self) -> Result<Arc<dyn QueenService>> {
        let mut q = self.queen.lock().await;
        if let Some(q) = q.as_ref() {
            return Ok(q.clone());
        }
        let address = &self.queen_address.address;
        let peer = self
            .transport
            .connect(address)
            .await
            .map_err(|e| e.context(format!("connecting to the queen at {address}")))?;
        *q = Some(peer.queen.clone());
        Ok(peer.queen)
    }

    fn learn(&self, list: Vec<Announcement>, save: bool) {
        let Ok(mut known) = self.known.lock() else {
            return;
        };
        let mut changed = false;
        for a in list {
            let body = match check(&a, self.transport.as_ref()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("ignoring an invalid announcement from the queen: {e}");
                    continue;
                }
            };
            let newer = known
                .get(&body.node_id)
                .is_none_or(|k| k.body.seq < body.seq);
            if newer {
                let same_address = known
                    .get(&body.node_id)
                    .is_some_and(|k| k.body.address == body.address);
                let peer = if same_address {
                    known.get(&body.node_id).and_then(|k| k.peer.clone())
                } else {
                    None
                };
                known.insert(
                    body.node_id.clone(),
                    Known {
                        body,
                        announcement: a,
                        peer,
                    },
                );
                changed = true;
            }
        }
        if changed
            && save
            && let Some(path) = &self.cache
        {
            let list: Vec<&Announcement> = known.values().map(|k| &k.announcement).collect();
            if let Ok(json) = serde_json::to_vec(&list) {
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, json)
                    .and_then(|_| std::fs::rename(&tmp, path))
                    .is_err()
                {
                    tracing::warn!("cannot save the server list to {}", path.display());
                }
            }
        }
    }

    /// The grid secret, for calls to the queen.
    pub fn grid_secret(&self) -> tahoe_core::protocol::GridSecret {
        self.queen_address.secret
    }

    /// One poll of the queen (a page of announcements); returns the new
    /// cursor. Callers poll again at once: a page with more behind it
    /// answers without waiting.
    pub async fn poll(&self, cursor: u64, wait_ms: u64) -> Result<u64> {
        let result = async {
            self.queen()
                .await?
                .poll_announcements(self.queen_address.secret, cursor, wait_ms)
                .await
        }
        .await;
        match result {
            Ok(batch) => {
                let was = self.queen_connected.swap(true, Ordering::Relaxed);
                // A new epoch in the cursor means the queen restarted.
                if !was || (cursor != 0 && cursor >> 32 != batch.cursor >> 32) {
                    self.queen_back.notify_waiters();
                }
                self.learn(batch.announcements, true);
                Ok(batch.cursor)
            }
            Err(e) => {
                self.queen_connected.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Follow the queen forever.
    pub async fn subscribe(self: Arc<Self>) {
        let mut cursor = 0;
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.poll(cursor, POLL_WAIT_MS).await {
                Ok(c) => {
                    cursor = c;
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::debug!("queen unreachable: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Every known server's announcement.
    pub fn known(&self) -> Vec<AnnouncementBody> {
        self.known
            .lock()
            .map(|k| k.values().map(|k| k.body.clone()).collect())
            .unwrap_or_default()
    }

    /// Every known server's announcement, and whether a connection to it
    /// is open.
    pub fn statuses(&self) -> Vec<(AnnouncementBody, bool)> {
        self.known
            .lock()
            .map(|k| {
                k.values()
                    .map(|k| (k.body.clone(), k.peer.is_some()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where the queen is (its address, without the grid secret).
    pub fn queen_location(&self) -> &str {
        &self.queen_address.address
    }

    /// The known servers that can be reached now, connecting as needed.
    pub async fn servers(&self) -> Vec<ServerRef> {
        let wanted: Vec<(String, String, Option<RemotePeer>)> = match self.known.lock() {
            Ok(k) => k
                .values()
                .map(|k| {
                    (
                        k.body.node_id.clone(),
                        k.body.address.clone(),
                        k.peer.clone(),
                    )
                })
                .collect(),
            Err(_) => return Vec::new(),
        };
        let connected = join_all(wanted.into_iter().map(|(id, address, peer)| async move {
            match peer {
                Some(p) => Some((id, p, false)),
                None => match self.transport.connect(&address).await {
                    Ok(p) => Some((id, p, true)),
                    Err(e) => {
                        tracing::debug!("storage server {id} at {address} unreachable: {e}");
                        None
                    }
                },
            }
        }))
        .await;
        let mut out = Vec::new();
        if let Ok(mut k) = self.known.lock() {
            for (id, peer, fresh) in connected.into_iter().flatten() {
                if fresh && let Some(entry) = k.get_mut(&id) {
                    entry.peer = Some(peer.clone());
                }
                let location = location_of(k.get(&id).map(|e| e.body.address.as_str()));
                out.push(ServerRef {
                    id,
                    location,
                    service: peer.storage,
                });
            }
        }
        out
    }

    /// Wait until at least `count` servers are known (polling the queen),
    /// or the deadline passes.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        let mut cursor = 0;
        loop {
            if self.known().len() >= count {
                return Ok(());
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Error::timeout(format!(
                    "{} of {count} storage servers known after {deadline:?}",
                    self.known().len()
                )));
            }
            match self.poll(cursor, left.as_millis().min(2000) as u64).await {
                Ok(c) => cursor = c,
                Err(e) => {
                    if self.known().is_empty() {
                        return Err(e);
                    }
                    return Ok(());
                }
            }
        }
    }
}
