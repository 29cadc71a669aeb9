//! The queen's rendezvous service.
//!
//! Keeps the newest valid announcement of every storage server and serves
//! them to subscribers by long polling: `poll_announcements(cursor)` answers
//! at once with what changed since `cursor`, or waits for a change. Every
//! call must carry the grid secret (from `introducer.url`), so only nodes
//! given it can join or learn the grid.
//!
//! Answers are pages of at most [`MAX_ANNOUNCEMENTS_PER_BATCH`], oldest
//! change first, with `more` set when others wait: however many servers
//! announce, every answer stays small. The cursor is the change counter of
//! the last announcement served, with a random epoch in its high bits, so a
//! client that polled a queen before it restarted gets everything again
//! instead of waiting for changes it already missed. Announcements live in
//! memory: storage servers re-announce periodically and whenever they
//! reconnect.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tahoe_core::protocol::{
    Announcement, AnnouncementBatch, GridSecret, MAX_ANNOUNCEMENTS_PER_BATCH, QueenService,
};
use tahoe_core::storage::constant_time_eq;
use tahoe_core::transport::Transport;
use tahoe_core::{Error, Result};
use tokio::sync::Notify;

use super::announce::check;

/// Longest a poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most servers remembered: bounds memory (each announcement is at most
/// 4 KiB) against floods by a member of the grid.
pub const MAX_SERVERS: usize = 10_000;
/// Bits of a cursor that count changes; the rest hold the epoch.
const COUNTER_BITS: u32 = 40;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

struct Entry {
    changed_at: u64,
    seq: u64,
    announcement: Announcement,
}

struct State {
    counter: u64,
    by_node: HashMap<String, Entry>,
    /// Node ids by the counter value of their last change.
    by_change: BTreeMap<u64, String>,
}

/// The queen service.
pub struct Queen {
    epoch: u64,
    secret: GridSecret,
    transport: Arc<dyn Transport>,
    state: Mutex<State>,
    changed: Notify,
}

impl Queen {
    /// A queen admitting holders of `secret`, with no announcements yet;
    /// `transport` tells which key an announced address pins.
    pub fn new(secret: GridSecret, transport: Arc<dyn Transport>) -> Result<Self> {
        let mut e = [0u8; 3];
        getrandom::fill(&mut e).map_err(|e| Error::internal(format!("random: {e}")))?;
        let epoch = u64::from(u32::from_be_bytes([0, e[0], e[1], e[2]])) << COUNTER_BITS;
        Ok(Queen {
            epoch,
            secret,
            transport,
            state: Mutex::new(State {
                counter: 0,
                by_node: HashMap::new(),
                by_change: BTreeMap::new(),
            }),
            changed: Notify::new(),
        })
    }

    fn admit(&self, secret: &GridSecret) -> Result<()> {
        if constant_time_eq(secret, &self.secret) {
            Ok(())
        } else {
            Err(Error::permission_denied(
                "wrong grid secret: this is not the queen's introducer.url",
            ))
        }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::internal("queen state poisoned"))
    }

    /// The page after `cursor`, or `None` when nothing changed since.
    fn batch_since(&self, cursor: u64) -> Result<Option<AnnouncementBatch>> {
        let st = self.state()?;
        let same_epoch = cursor & !COUNTER_MASK == self.epoch;
        let since = if same_epoch { cursor & COUNTER_MASK } else { 0 };
        if same_epoch && since >= st.counter {
            return Ok(None);
        }
        let mut page = st.by_change.range(since + 1..);
        let mut announcements = Vec::new();
        let mut last = since;
        for (&at, node) in page.by_ref().take(MAX_ANNOUNCEMENTS_PER_BATCH) {
            if let Some(e) = st.by_node.get(node) {
                announcements.push(e.announcement.clone());
            }
            last = at;
        }
        Ok(Some(AnnouncementBatch {
            cursor: self.epoch | last,
            more: page.next().is_some(),
            announcements,
        }))
    }

    /// How many servers are known.
    pub fn server_count(&self) -> usize {
        self.state().map(|s| s.by_node.len()).unwrap_or(0)
    }
}

#[async_trait]
impl QueenService for Queen {
    async fn announce(&self, secret: GridSecret, announcement: Announcement) -> Result<()> {
        self.admit(&secret)?;
        let body = check(&announcement, self.transport.as_ref())
            .inspect_err(|e| tracing::warn!("refused an announcement: {e}"))?;
        let mut st = self.state()?;
        if let Some(old) = st.by_node.get(&body.node_id) {
            if old.seq >= body.seq {
                return Ok(());
            }
        } else if st.by_node.len() >= MAX_SERVERS {
            return Err(Error::no_space(format!(
                "the queen knows {MAX_SERVERS} servers, its limit"
            )));
        }
        if st.counter >= COUNTER_MASK {
            return Err(Error::internal(
                "the queen's change counter is exhausted; restart it",
            ));
        }
        st.counter += 1;
        let changed_at = st.counter;
        tracing::info!(
            "announcement from {} ({}) at {}",
            body.node_id,
            body.nickname.escape_debug(),
            body.address.escape_debug()
        );
        if let Some(old) = st.by_node.insert(
            body.node_id.clone(),
            Entry {
                changed_at,
                seq: body.seq,
                announcement,
            },
        ) {
            st.by_change.remove(&old.changed_at);
        }
        st.by_change.insert(changed_at, body.node_id);
        drop(st);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn poll_announcements(
        &self,
        secret: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        self.admit(&secret)?;
        let wait = Duration::from_millis(wait_ms).min(MAX_WAIT);
        let notified = self.changed.notified();
        if let Some(b) = self.batch_since(cursor)? {
            return Ok(b);
        }
        let _ = tokio::time::timeout(wait, notified).await;
        Ok(self.batch_since(cursor)?.unwrap_or(AnnouncementBatch {
            cursor,
            announcements: Vec::new(),
            more: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::announce::{AnnouncementBody, sign};
    use tahoe_core::identity::NodeKey;
    use tahoe_transport_memory::MemoryTransport;

    fn announcement(key: &NodeKey, seq: u64) -> Announcement {
        sign(
            key,
            &AnnouncementBody {
                node_id: key.node_id(),
                nickname: "n".into(),
                address: "memory:x".into(),
                available_space: None,
                version: "t".into(),
                seq,
            },
        )
        .expect("sign")
    }

    #[tokio::test]
    async fn pages_cover_every_server_once_and_need_the_secret() {
        let q = Queen::new([1; 32], Arc::new(MemoryTransport)).expect("queen");
        let keys: Vec<NodeKey> = (0..(MAX_ANNOUNCEMENTS_PER_BATCH * 2 + 7))
            .map(|_| NodeKey::generate().expect("key"))
            .collect();
        for k in &keys {
            q.announce([1; 32], announcement(k, 1))
                .await
                .expect("announce");
        }
        assert_eq!(
            q.announce([2; 32], announcement(&keys[0], 2))
                .await
                .expect_err("no secret")
                .kind(),
            tahoe_core::ErrorKind::PermissionDenied
        );
        assert!(q.poll_announcements([2; 32], 0, 0).await.is_err());
        // A re-announcement moves to the end.
        q.announce([1; 32], announcement(&keys[0], 2))
            .await
            .expect("again");
        let mut cursor = 0;
        let mut seen = std::collections::HashSet::new();
        let mut pages = 0;
        loop {
            let b = q
                .poll_announcements([1; 32], cursor, 0)
                .await
                .expect("poll");
            assert!(b.announcements.len() <= MAX_ANNOUNCEMENTS_PER_BATCH);
            for a in &b.announcements {
                assert!(seen.insert(a.public_key.clone()), "an announcement twice");
            }
            cursor = b.cursor;
            pages += 1;
            if !b.more {
                break;
            }
        }
        assert_eq!(seen.len(), keys.len());
        assert_eq!(pages, 3);
        // Nothing new: the poll waits, then answers empty.
        let b = q
            .poll_announcements([1; 32], cursor, 10)
            .await
            .expect("poll");
        assert!(b.announcements.is_empty() && !b.more);
    }
}
