//! The storage broker: what a client knows about the grid.
//!
//! It subscribes to the queen (long polls, reconnecting with backoff when
//! the queen is away), keeps every valid announcement it has seen, and
//! saves them to `BASEDIR/servers.json` so that a client started while the
//! queen is down still knows where to go. Each known server has a
//! [`Link`], connected and watched in the background: operations take the
//! servers that are up and never wait for one that is not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tahoe_core::client::servers::ServerRef;
use tahoe_core::protocol::transport::Transport;
use tahoe_core::protocol::{Announcement, QueenAddress, QueenService};
use tahoe_core::{Error, Result};

use super::link::Link;
use tahoe_core::protocol::announce::{AnnouncementBody, check, now_ms};

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
    link: Arc<Link>,
    /// When this node last received its announcement.
    received: Instant,
}

/// A known server as the node's pages show it.
#[derive(Debug, Clone)]
pub struct ServerStatus {
    /// Its announcement.
    pub body: AnnouncementBody,
    /// Whether it is up (connected and answering).
    pub connected: bool,
    /// Why it is not, when it is down.
    pub down_because: Option<String>,
    /// How long ago this node last heard its announcement (renewed every
    /// `node.announce_interval_secs`), from the queen or the saved list.
    pub announced_ago: Duration,
}

/// How long an operation waits for servers whose first connection attempt
/// is under way: until none is, or nothing has changed for
/// [`SETTLED_AFTER`] with one server up, and never longer than this.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);
const SETTLED_AFTER: Duration = Duration::from_millis(200);

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
        {
            match read_cache(&text) {
                Ok(list) => b.learn(list, false),
                // A cache: the queen tells again what it held. Said, not
                // misread; replaced by this build's own on the next save.
                Err(why) => tracing::warn!("not using {}: {why}", path.display()),
            }
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
                let link = match known.get(&body.node_id) {
                    Some(k) if k.body.address == body.address => k.link.clone(),
                    _ => Link::new(body.address.clone()),
                };
                link.start(&self.transport);
                // Heard now from the queen; from the saved list, as old as
                // its signature (the announcer's clock).
                let received = if save {
                    Instant::now()
                } else {
                    let age = Duration::from_millis(now_ms().saturating_sub(body.seq));
                    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
                };
                known.insert(
                    body.node_id.clone(),
                    Known {
                        body,
                        announcement: a,
                        link,
                        received,
                    },
                );
                changed = true;
            }
        }
        if changed
            && save
            && let Some(path) = &self.cache
        {
            let cache = ServersFile {
                version: SERVERS_FORMAT,
                servers: known.values().map(|k| k.announcement.clone()).collect(),
            };
            if let Ok(json) = serde_json::to_vec(&cache) {
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

    /// Every known server: its announcement, whether it is up, and how
    /// stale what we know of it is.
    pub fn statuses(&self) -> Vec<ServerStatus> {
        self.known
            .lock()
            .map(|k| {
                k.values()
                    .map(|k| ServerStatus {
                        body: k.body.clone(),
                        connected: k.link.up().is_some(),
                        down_because: k.link.down_because(),
                        announced_ago: k.received.elapsed(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where the queen is (its address, without the grid secret).
    pub fn queen_location(&self) -> &str {
        &self.queen_address.address
    }

    fn links(&self) -> Vec<Arc<Link>> {
        self.known
            .lock()
            .map(|k| k.values().map(|k| k.link.clone()).collect())
            .unwrap_or_default()
    }

    /// Wait, briefly, for first connection attempts under way (see
    /// [`FIRST_CONNECT_WAIT`]); a running node's are long done.
    async fn settle(&self) {
        let began = Instant::now();
        loop {
            let links = self.links();
            for l in &links {
                l.start(&self.transport);
            }
            if !links.iter().any(|l| l.first_pending()) {
                return;
            }
            let quiet = links
                .iter()
                .map(|l| l.last_change())
                .max()
                .is_some_and(|t| t.elapsed() >= SETTLED_AFTER);
            if (quiet && links.iter().any(|l| l.up().is_some()))
                || began.elapsed() >= FIRST_CONNECT_WAIT
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The known servers that are up now.
    pub async fn servers(&self) -> Vec<ServerRef> {
        self.settle().await;
        let Ok(known) = self.known.lock() else {
            return Vec::new();
        };
        known
            .values()
            .filter_map(|k| {
                Some(ServerRef {
                    id: k.body.node_id.clone(),
                    location: location_of(Some(&k.body.address)),
                    service: k.link.up()?,
                })
            })
            .collect()
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

/// `servers.json`'s format: `{"version": 1, "servers": [ANNOUNCEMENT...]}`.
/// Before it had a version the file was the bare list, read as well.
const SERVERS_FORMAT: u32 = 1;

/// What `servers.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct ServersFile {
    version: u32,
    servers: Vec<Announcement>,
}

/// The announcements a `servers.json` holds, or why it is not read: a
/// newer format (named), or damage.
fn read_cache(bytes: &[u8]) -> std::result::Result<Vec<Announcement>, String> {
    if let Ok(list) = serde_json::from_slice::<Vec<Announcement>>(bytes) {
        return Ok(list);
    }
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u32,
    }
    match serde_json::from_slice::<Versioned>(bytes) {
        Ok(v) if v.version > SERVERS_FORMAT => Err(format!(
            "it is format {}, newer than this tahoe reads ({SERVERS_FORMAT})",
            v.version
        )),
        _ => serde_json::from_slice::<ServersFile>(bytes)
            .map(|f| f.servers)
            .map_err(|e| format!("it is damaged ({e})")),
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn a_newer_servers_json_is_refused_by_its_version_and_the_old_list_read() {
        let newer = br#"{"version": 2, "servers": [], "more": 1}"#;
        let e = read_cache(newer).unwrap_err();
        assert!(e.contains("format 2") && e.contains("(1)"), "{e}");
        assert_eq!(read_cache(b"[]").unwrap().len(), 0);
        assert_eq!(
            read_cache(br#"{"version": 1, "servers": []}"#)
                .unwrap()
                .len(),
            0
        );
        assert!(read_cache(b"{").unwrap_err().contains("damaged"));
    }
}
