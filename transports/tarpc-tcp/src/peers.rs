//! Who a peer is, and what it holds on a listener.
//!
//! Servers do not ask clients for certificates (storage calls carry their
//! own authority), so a peer is known by its address: its IPv4 address, or
//! the /64 an IPv6 host is usually given. Decision: budgets are keyed by
//! that, never by a key the peer presents, because a peer can mint a fresh
//! key for every connection and a budget it can multiply at will is no
//! budget. Several nodes behind one address share its budgets; the
//! defaults leave room for that.
//!
//! What a peer holds here is counted against it, whichever of its
//! connections holds it: its connections ([`Peers::admit`]) and the answers
//! computed for it that it has not read yet ([`Peer::charge`]). Everything
//! is given back by `Drop`, so a connection that closes, however it
//! closes, releases what it held at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tahoe_core::protocol::Caller;

/// The address a peer's budgets are charged to.
pub(crate) fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

/// One peer's holdings.
pub(crate) struct Peer {
    key: IpAddr,
    connections: AtomicUsize,
    unread_bytes: AtomicU64,
    unread_answers: AtomicU64,
}

impl Peer {
    /// The label the node's services charge this peer's calls to.
    pub(crate) fn caller(&self) -> Caller {
        Caller(self.key.to_string())
    }

    /// Count an answer of `bytes` that waits for the peer to read it; the
    /// charge is given back when the [`Charge`] is dropped (once written,
    /// or with its connection). `Err` (saying why) when the peer would then
    /// hold more unread answers than `limits` allow: its connection is to
    /// be closed.
    pub(crate) fn charge(
        self: &Arc<Self>,
        bytes: u64,
        limits: &UnreadLimits,
    ) -> Result<Charge, String> {
        let total = self.unread_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let count = self.unread_answers.fetch_add(1, Ordering::AcqRel) + 1;
        let charge = Charge {
            peer: self.clone(),
            bytes,
        };
        if total > limits.bytes || count > limits.answers {
            return Err(format!(
                "{} holds {count} unread answers ({total} bytes); the limit is {} answers and {} bytes",
                self.key, limits.answers, limits.bytes
            ));
        }
        Ok(charge)
    }

    #[cfg(test)]
    fn unread(&self) -> (u64, u64) {
        (
            self.unread_answers.load(Ordering::Acquire),
            self.unread_bytes.load(Ordering::Acquire),
        )
    }
}

/// How much a peer may leave unread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnreadLimits {
    pub(crate) answers: u64,
    pub(crate) bytes: u64,
}

/// An unread answer's place in its peer's budget.
pub(crate) struct Charge {
    peer: Arc<Peer>,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.peer
            .unread_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.peer.unread_answers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every peer with a connection open.
#[derive(Default)]
pub(crate) struct Peers(Mutex<HashMap<IpAddr, Arc<Peer>>>);

/// One connection's place among its peer's, given back when dropped.
pub(crate) struct Admitted {
    peers: Arc<Peers>,
    pub(crate) peer: Arc<Peer>,
}

impl Peers {
    /// Admit a connection from `ip`, unless its peer already has `max`.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Admitted> {
        let key = peer_key(ip);
        let mut table = self.0.lock().ok()?;
        let peer = table
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Peer {
                    key,
                    connections: AtomicUsize::new(0),
                    unread_bytes: AtomicU64::new(0),
                    unread_answers: AtomicU64::new(0),
                })
            })
            .clone();
        if peer.connections.load(Ordering::Acquire) >= max {
            return None;
        }
        peer.connections.fetch_add(1, Ordering::AcqRel);
        Some(Admitted {
            peers: self.clone(),
            peer,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut table) = self.peers.0.lock()
            && self.peer.connections.fetch_sub(1, Ordering::AcqRel) == 1
        {
            table.remove(&self.peer.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_its_slash_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(peer_key(mapped), "10.1.2.3".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn connections_and_unread_answers_are_counted_per_peer_and_given_back() {
        let peers = Arc::new(Peers::default());
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let one = peers.admit(ip, 2).expect("first");
        let two = peers.admit(ip, 2).expect("second");
        assert!(peers.admit(ip, 2).is_none(), "a third over the limit");
        assert!(peers.admit("10.0.0.2".parse().expect("ip"), 2).is_some());
        let limits = UnreadLimits {
            answers: 3,
            bytes: 100,
        };
        // Answers held by either connection count against the one peer.
        let a = one.peer.charge(40, &limits).expect("a");
        let b = two.peer.charge(40, &limits).expect("b");
        assert!(one.peer.charge(40, &limits).is_err(), "over the bytes");
        assert_eq!(one.peer.unread(), (2, 80), "a refused charge is given back");
        drop(a);
        let c = two.peer.charge(40, &limits).expect("room again");
        drop((b, c));
        assert_eq!(one.peer.unread(), (0, 0));
        drop(one);
        let three = peers.admit(ip, 2).expect("room after a close");
        drop((two, three));
        assert!(peers.0.lock().expect("lock").get(&ip).is_none());
    }
}
