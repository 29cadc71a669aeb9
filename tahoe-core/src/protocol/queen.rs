//! The queen's announcement protocol: its records, its calls (each listed
//! once) and the queen's address.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Secret;
use super::calls::protocol;
use crate::error::Result;

/// A storage server's signed self-description, relayed by the queen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Serialized announcement body (node id, addresses, nickname, capacity,
    /// version); opaque to the queen except for signature checking.
    pub body: Bytes,
    /// Signature over `body` by the announcing node's key.
    pub signature: Bytes,
    /// The announcing node's public key.
    pub public_key: Bytes,
}

/// A batch of announcements as served to subscribers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementBatch {
    /// Pass this to the next [`QueenService::poll_announcements`] call.
    pub cursor: u64,
    /// Announcements of nodes that changed since the cursor given (all of
    /// them for cursor 0), oldest change first, at most
    /// [`MAX_ANNOUNCEMENTS_PER_BATCH`].
    pub announcements: Vec<Announcement>,
    /// More changes wait beyond this page: poll again with `cursor` at once.
    pub more: bool,
}

/// The most announcements one [`AnnouncementBatch`] carries, so that an
/// answer stays small (announcement bodies are at most 4 KiB) however many
/// servers the queen knows.
pub const MAX_ANNOUNCEMENTS_PER_BATCH: usize = 256;

/// The secret that admits a node to a grid: the queen refuses every call
/// without it. It travels inside the queen's address (`introducer.url`),
/// like the swissnum of a Tahoe introducer furl.
pub type GridSecret = Secret;

protocol! {
    /// The queen's rendezvous service.
    ///
    /// # Contract (all methods)
    /// `PermissionDenied` unless `grid_secret` is the grid's.
    trait QueenService;

    /// A handle for the calls of one peer connection from `caller`, as
    /// [`StorageService::open_session`](super::StorageService::open_session):
    /// the queen charges what the caller announces to it. `None` (the
    /// default): serve every connection with the service itself.
    session;

    request QueenRequest;
    response QueenResponse;
    serve serve_queen;
    carrier QueenCarrier;
    client QueenClient;
    layer QueenLayer;

    calls {
        /// Publish or replace this node's announcement. `PermissionDenied`
        /// for a bad signature, an address that names another key, or
        /// fields over their limits.
        Announce => fn announce(grid_secret: GridSecret, announcement: Announcement) -> ();

        /// Long-poll for announcements newer than `cursor`: answers at once
        /// when there are some, otherwise waits up to `wait_ms` and answers
        /// with none. This keeps subscription push-like over any
        /// request/response transport.
        PollAnnouncements => fn poll_announcements(
            grid_secret: GridSecret,
            cursor: u64,
            wait_ms: u64,
        ) -> AnnouncementBatch;
    }
}

impl QueenRequest {
    /// How long the call may wait at the queen before answering (a long
    /// poll's `wait_ms`): transports add it to the call's deadline, and
    /// need not bound the memory of a call that only waits.
    pub fn waits(&self) -> Option<std::time::Duration> {
        match self {
            QueenRequest::PollAnnouncements { wait_ms, .. } => {
                Some(std::time::Duration::from_millis(*wait_ms))
            }
            _ => None,
        }
    }
}

/// A queen's address with the grid secret that admits its holder:
/// `TRANSPORT-ADDRESS/SECRET`, the secret in base32 (52 characters), e.g.
/// `tahoe+tcp://NODEID@HOST:PORT/SECRET`. This is what `introducer.url`
/// holds; like a Tahoe introducer furl, it is itself a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct QueenAddress {
    /// Where the queen listens, in its transport's syntax.
    pub address: String,
    /// The grid secret.
    pub secret: GridSecret,
}

impl QueenAddress {
    /// Parse `ADDRESS/SECRET`.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let bad = || {
            crate::Error::invalid_input(
                "the queen's address must end with /SECRET (copy introducer.url as \
                 create-queen wrote it)",
            )
        };
        let (address, secret) = url.rsplit_once('/').ok_or_else(bad)?;
        let secret = crate::base32::decode_array::<32>(secret).map_err(|_| bad())?;
        if address.is_empty() || address.ends_with('/') {
            return Err(bad());
        }
        Ok(QueenAddress {
            address: address.to_string(),
            secret,
        })
    }
}

impl std::fmt::Display for QueenAddress {
    /// The whole URL, secret included: for `introducer.url` only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.address,
            crate::base32::encode(&self.secret)
        )
    }
}

impl std::fmt::Debug for QueenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueenAddress({}/<secret>)", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queen_addresses_round_trip_and_hide_their_secret() {
        let a = QueenAddress {
            address: "tahoe+tcp://abc@127.0.0.1:5".into(),
            secret: [9; 32],
        };
        let text = a.to_string();
        assert_eq!(QueenAddress::parse(&text).unwrap(), a);
        assert_eq!(QueenAddress::parse(&format!(" {text}\n")).unwrap(), a);
        assert!(!format!("{a:?}").contains(&crate::base32::encode(&[9; 32])));
        for bad in [
            "tahoe+tcp://abc@127.0.0.1:5",
            "tahoe+tcp://abc@127.0.0.1:5/",
            "tahoe+tcp://abc@127.0.0.1:5/short",
            "/aaaa",
        ] {
            assert!(QueenAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
