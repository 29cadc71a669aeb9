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
//!
//! The table forgets: an entry its announcer has not renewed within the
//! time to live (`queen.announcement_ttl_secs`, by default three announce
//! intervals) is dropped, and an announcement older than one that expired
//! is not taken back (so a replay cannot revive a server that is gone).
//! One grid member (a [`Caller`]: a peer address) may have at most
//! `queen.max_servers_per_member` identities in the table, so one member
//! cannot fill it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tahoe_core::kinds::storage::constant_time_eq;
use tahoe_core::protocol::transport::Transport;
use tahoe_core::protocol::{
    Announcement, AnnouncementBatch, Caller, GridSecret, MAX_ANNOUNCEMENTS_PER_BATCH, QueenService,
};
use tahoe_core::{Error, Result};
use tokio::sync::Notify;

use tahoe_core::protocol::announce::check;

/// Longest a poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most servers remembered: bounds memory (each announcement is at most
/// 4 KiB) against floods by a member of the grid.
const MAX_SERVERS: usize = 10_000;
/// Bits of a cursor that count changes; the rest hold the epoch.
const COUNTER_BITS: u32 = 40;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

struct Entry {
    changed_at: u64,
    seq: u64,
    announcement: Announcement,
    /// When its announcer last renewed it.
    renewed: Instant,
    /// Who announced it (`None`: in process).
    by: Option<Caller>,
}

struct State {
    counter: u64,
    by_node: HashMap<String, Entry>,
    /// Node ids by the counter value of their last change.
    by_change: BTreeMap<u64, String>,
    /// The sequence numbers of entries that expired, so that their old
    /// announcements are not taken back (at most [`MAX_SERVERS`]).
    expired: HashMap<String, u64>,
    last_sweep: Instant,
}

/// How the queen keeps its table.
#[derive(Debug, Clone, Copy)]
pub struct QueenLimits {
    /// An entry not renewed for this long is dropped.
    pub ttl: Duration,
    /// Most identities one member may have in the table.
    pub per_member: usize,
}

struct Shared {
    epoch: u64,
    secret: GridSecret,
    transport: Arc<dyn Transport>,
    limits: QueenLimits,
    state: Mutex<State>,
    changed: Notify,
}

/// The queen service. [`QueenService::open_session`] gives each connection
/// a handle charged to its caller.
#[derive(Clone)]
pub struct Queen {
    shared: Arc<Shared>,
    caller: Option<Caller>,
}

impl Queen {
    /// A queen admitting holders of `secret`, with no announcements yet;
    /// `transport` tells which key an announced address pins.
    pub fn new(
        secret: GridSecret,
        transport: Arc<dyn Transport>,
        limits: QueenLimits,
    ) -> Result<Self> {
        let mut e = [0u8; 3];
        getrandom::fill(&mut e).map_err(|e| Error::internal(format!("random: {e}")))?;
        let epoch = u64::from(u32::from_be_bytes([0, e[0], e[1], e[2]])) << COUNTER_BITS;
        Ok(Queen {
            shared: Arc::new(Shared {
                epoch,
                secret,
                transport,
                limits,
                state: Mutex::new(State {
                    counter: 0,
                    by_node: HashMap::new(),
                    by_change: BTreeMap::new(),
                    expired: HashMap::new(),
                    last_sweep: Instant::now(),
                }),
                changed: Notify::new(),
            }),
            caller: None,
        })
    }

    fn admit(&self, secret: &GridSecret) -> Result<()> {
        if constant_time_eq(secret, &self.shared.secret) {
            Ok(())
        } else {
            Err(Error::permission_denied(
                "wrong grid secret: this is not the queen's introducer.url",
            ))
        }
    }

    /// The table, with entries past their time to live dropped (looked at
    /// once a second at most).
    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        let mut st = self
            .shared
            .state
            .lock()
            .map_err(|_| Error::internal("queen state poisoned"))?;
        if st.last_sweep.elapsed() >= Duration::from_secs(1) {
            st.last_sweep = Instant::now();
            let ttl = self.shared.limits.ttl;
            let gone: Vec<String> = st
                .by_node
                .iter()
                .filter(|(_, e)| e.renewed.elapsed() > ttl)
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                if let Some(e) = st.by_node.remove(&id) {
                    st.by_change.remove(&e.changed_at);
                    tracing::info!("{id} was not renewed within {ttl:?}: forgotten");
                    if st.expired.len() >= MAX_SERVERS {
                        st.expired.clear();
                    }
                    st.expired.insert(id, e.seq);
                }
            }
        }
        Ok(st)
    }

    /// The page after `cursor`, or `None` when nothing changed since.
    fn batch_since(&self, cursor: u64) -> Result<Option<AnnouncementBatch>> {
        let st = self.state()?;
        let epoch = self.shared.epoch;
        let same_epoch = cursor & !COUNTER_MASK == epoch;
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
            cursor: epoch | last,
            more: page.next().is_some(),
            announcements,
        }))
    }

    /// How many servers are known.
    pub fn server_count(&self) -> usize {
        self.state().map(|s| s.by_node.len()).unwrap_or(0)
    }

    /// Every server known: its node id, and how long ago it was renewed.
    #[cfg(test)]
    fn ages(&self) -> Vec<(String, Duration)> {
        self.state()
            .map(|s| {
                s.by_node
                    .iter()
                    .map(|(id, e)| (id.clone(), e.renewed.elapsed()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl QueenService for Queen {
    fn open_session(&self, caller: &Caller) -> Option<Arc<dyn QueenService>> {
        Some(Arc::new(Queen {
            shared: self.shared.clone(),
            caller: Some(caller.clone()),
        }))
    }

    async fn announce(&self, secret: GridSecret, announcement: Announcement) -> Result<()> {
        self.admit(&secret)?;
        let body = check(&announcement, self.shared.transport.as_ref())
            .inspect_err(|e| tracing::warn!("refused an announcement: {e}"))?;
        let mut st = self.state()?;
        if st
            .expired
            .get(&body.node_id)
            .is_some_and(|&s| s >= body.seq)
        {
            return Err(Error::invalid_input(format!(
                "an announcement of {} older than one that expired",
                body.node_id
            )));
        }
        if let Some(old) = st.by_node.get(&body.node_id) {
            if old.seq >= body.seq {
                return Ok(());
            }
        } else if st.by_node.len() >= MAX_SERVERS {
            return Err(Error::no_space(format!(
                "the queen knows {MAX_SERVERS} servers, its limit"
            )));
        }
        if let Some(by) = &self.caller {
            let limit = self.shared.limits.per_member;
            let theirs = st
                .by_node
                .iter()
                .filter(|(id, e)| e.by.as_ref() == Some(by) && **id != body.node_id)
                .count();
            if theirs >= limit {
                tracing::warn!("refused an announcement from {by}: it has {theirs} servers here");
                return Err(Error::no_space(format!(
                    "{by} has announced {theirs} servers, the most one grid member may (queen.max_servers_per_member)"
                )));
            }
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
                renewed: Instant::now(),
                by: self.caller.clone(),
            },
        ) {
            st.by_change.remove(&old.changed_at);
        }
        st.by_change.insert(changed_at, body.node_id);
        drop(st);
        self.shared.changed.notify_waiters();
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
        let notified = self.shared.changed.notified();
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
    use tahoe_core::protocol::announce::{AnnouncementBody, sign};
    use tahoe_core::protocol::identity::NodeKey;
    use tahoe_transport_memory::MemoryTransport;

    fn limits(ttl_secs: u64, per_member: usize) -> QueenLimits {
        QueenLimits {
            ttl: Duration::from_secs(ttl_secs),
            per_member,
        }
    }

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
        let q = Queen::new([1; 32], Arc::new(MemoryTransport), limits(60, 10)).expect("queen");
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

    #[tokio::test]
    async fn one_member_cannot_fill_the_table() {
        let q = Queen::new([1; 32], Arc::new(MemoryTransport), limits(60, 3)).expect("queen");
        let mallory = q
            .open_session(&Caller("10.0.0.66".into()))
            .expect("session");
        let keys: Vec<NodeKey> = (0..5).map(|_| NodeKey::generate().expect("key")).collect();
        for k in &keys[..3] {
            mallory
                .announce([1; 32], announcement(k, 1))
                .await
                .expect("within the limit");
        }
        let e = mallory
            .announce([1; 32], announcement(&keys[3], 1))
            .await
            .expect_err("a fourth identity");
        assert_eq!(e.kind(), tahoe_core::ErrorKind::NoSpace, "{e}");
        // Its own servers still renew; another member still gets in.
        mallory
            .announce([1; 32], announcement(&keys[0], 2))
            .await
            .expect("renewal");
        let other = q.open_session(&Caller("10.0.0.1".into())).expect("session");
        other
            .announce([1; 32], announcement(&keys[4], 1))
            .await
            .expect("another member");
        assert_eq!(q.server_count(), 4);
    }

    #[tokio::test]
    async fn servers_not_renewed_are_forgotten_and_not_revived_by_a_replay() {
        let q = Queen::new([1; 32], Arc::new(MemoryTransport), limits(1, 10)).expect("queen");
        let (a, b) = (
            NodeKey::generate().expect("key"),
            NodeKey::generate().expect("key"),
        );
        q.announce([1; 32], announcement(&a, 1)).await.expect("a");
        q.announce([1; 32], announcement(&b, 1)).await.expect("b");
        for seq in 2..6 {
            // b renews, a does not.
            tokio::time::sleep(Duration::from_millis(600)).await;
            q.announce([1; 32], announcement(&b, seq))
                .await
                .expect("b renews");
        }
        let known: Vec<String> = q.ages().into_iter().map(|(id, _)| id).collect();
        assert_eq!(known, vec![b.node_id()], "a was not forgotten");
        let all = q.poll_announcements([1; 32], 0, 0).await.expect("poll");
        assert_eq!(all.announcements.len(), 1);
        let e = q
            .announce([1; 32], announcement(&a, 1))
            .await
            .expect_err("a replay of a's last announcement");
        assert_eq!(e.kind(), tahoe_core::ErrorKind::InvalidInput, "{e}");
        q.announce([1; 32], announcement(&a, 2))
            .await
            .expect("a comes back, newer");
        assert_eq!(q.server_count(), 2);
    }
}
