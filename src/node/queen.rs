//! The queen's rendezvous service.
//!
//! Keeps the newest valid announcement of every storage server and serves
//! them to subscribers by long polling: `poll_announcements(cursor)` answers
//! at once with what changed since `cursor`, or waits for a change. The
//! cursor carries a random epoch in its high bits, so a client that polled
//! a queen before it restarted gets everything again instead of waiting
//! for changes it already missed. Announcements live in memory: storage
//! servers re-announce periodically and whenever they reconnect.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tahoe_core::protocol::{Announcement, AnnouncementBatch, QueenService};
use tahoe_core::{Error, Result};
use tokio::sync::Notify;

use super::announce::check;

/// Longest a poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most servers remembered (bounds memory against announcement floods).
const MAX_SERVERS: usize = 100_000;

struct Entry {
    changed_at: u64,
    seq: u64,
    announcement: Announcement,
}

struct State {
    counter: u64,
    by_node: HashMap<String, Entry>,
}

/// The queen service.
pub struct Queen {
    epoch: u64,
    state: Mutex<State>,
    changed: Notify,
}

impl Queen {
    /// A queen with no announcements yet.
    pub fn new() -> Result<Self> {
        let mut e = [0u8; 4];
        getrandom_fill(&mut e)?;
        Ok(Queen {
            epoch: u64::from(u32::from_be_bytes(e)) << 32,
            state: Mutex::new(State {
                counter: 0,
                by_node: HashMap::new(),
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::internal("queen state poisoned"))
    }

    fn batch_since(&self, cursor: u64) -> Result<Option<AnnouncementBatch>> {
        let st = self.state()?;
        let now = self.epoch | st.counter;
        let since = if cursor & !0xffff_ffff == self.epoch {
            cursor & 0xffff_ffff
        } else {
            0
        };
        if since >= st.counter && cursor & !0xffff_ffff == self.epoch {
            return Ok(None);
        }
        let announcements = st
            .by_node
            .values()
            .filter(|e| e.changed_at > since)
            .map(|e| e.announcement.clone())
            .collect();
        Ok(Some(AnnouncementBatch {
            cursor: now,
            announcements,
        }))
    }

    /// How many servers are known.
    pub fn server_count(&self) -> usize {
        self.state().map(|s| s.by_node.len()).unwrap_or(0)
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::internal(format!("random: {e}")))
}

#[async_trait]
impl QueenService for Queen {
    async fn announce(&self, announcement: Announcement) -> Result<()> {
        let body =
            check(&announcement).inspect_err(|e| tracing::warn!("refused an announcement: {e}"))?;
        let mut st = self.state()?;
        if let Some(old) = st.by_node.get(&body.node_id) {
            if old.seq >= body.seq {
                return Ok(());
            }
        } else if st.by_node.len() >= MAX_SERVERS {
            return Err(Error::no_space("the queen knows too many servers"));
        }
        st.counter += 1;
        let changed_at = st.counter;
        tracing::info!(
            "announcement from {} ({}) at {}",
            body.node_id,
            body.nickname,
            body.address
        );
        st.by_node.insert(
            body.node_id,
            Entry {
                changed_at,
                seq: body.seq,
                announcement,
            },
        );
        drop(st);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn poll_announcements(&self, cursor: u64, wait_ms: u64) -> Result<AnnouncementBatch> {
        let wait = Duration::from_millis(wait_ms).min(MAX_WAIT);
        let notified = self.changed.notified();
        if let Some(b) = self.batch_since(cursor)? {
            return Ok(b);
        }
        let _ = tokio::time::timeout(wait, notified).await;
        Ok(self.batch_since(cursor)?.unwrap_or(AnnouncementBatch {
            cursor,
            announcements: Vec::new(),
        }))
    }
}
