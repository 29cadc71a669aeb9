//! Signed announcements: what a storage server tells the queen about itself.
//!
//! The body is JSON, signed with the node's Ed25519 key; the node id is the
//! hash of that key, so a forged announcement for someone else's id fails
//! the check. The address inside must pin the same key (for tarpc-tcp its
//! fingerprint is the node id), so whoever trusts the announcement also
//! pins the right connection, and nobody can announce another node's
//! address as theirs.

use crate::error::{Error, Result};
use crate::protocol::Announcement;
use crate::protocol::identity::{NodeKey, node_id_of, verify};
use crate::protocol::transport::Transport;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The largest announcement body accepted.
const MAX_BODY: usize = 4096;

/// What a storage server announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementBody {
    /// base32 SHA-256 of the node's public key.
    pub node_id: String,
    /// For people.
    pub nickname: String,
    /// Where its storage service listens.
    pub address: String,
    /// Bytes it can still accept, when known.
    pub available_space: Option<u64>,
    /// Software version.
    pub version: String,
    /// Increases with every announcement of this node (milliseconds since
    /// the epoch), so the queen keeps the newest.
    pub seq: u64,
}

/// Sign a body.
pub fn sign(key: &NodeKey, body: &AnnouncementBody) -> Result<Announcement> {
    let bytes = serde_json::to_vec(body).map_err(|e| Error::internal(format!("json: {e}")))?;
    Ok(Announcement {
        signature: Bytes::from(key.sign(&bytes)),
        body: Bytes::from(bytes),
        public_key: Bytes::copy_from_slice(key.public_key()),
    })
}

/// Longest nickname, in bytes.
const MAX_NICKNAME: usize = 200;
/// Longest address, in bytes.
const MAX_ADDRESS: usize = 500;
/// Longest version string, in bytes.
pub const MAX_VERSION: usize = 100;

/// Check an announcement and return its body: the signature verifies, the
/// node id is the signing key's, every field is within its limit, and the
/// address pins that same key (`transport` says which key an address
/// pins), so that a server's id, signing key and TLS identity are one.
pub fn check(a: &Announcement, transport: &dyn Transport) -> Result<AnnouncementBody> {
    if a.body.len() > MAX_BODY || a.public_key.len() != 32 || a.signature.len() != 64 {
        return Err(Error::permission_denied("malformed announcement"));
    }
    verify(&a.public_key, &a.body, &a.signature)
        .map_err(|_| Error::permission_denied("announcement signature does not verify"))?;
    let body: AnnouncementBody = serde_json::from_slice(&a.body)
        .map_err(|e| Error::permission_denied(format!("announcement body: {e}")))?;
    if body.node_id != node_id_of(&a.public_key) {
        return Err(Error::permission_denied(
            "announcement names another node's id",
        ));
    }
    if body.nickname.len() > MAX_NICKNAME
        || body.address.len() > MAX_ADDRESS
        || body.version.len() > MAX_VERSION
    {
        return Err(Error::permission_denied("announcement fields too long"));
    }
    match transport.pinned_node_id(&body.address) {
        Ok(Some(id)) if id == body.node_id => {}
        Ok(None) => {} // an in-process transport: nothing to pin
        Ok(Some(_)) => {
            return Err(Error::permission_denied(format!(
                "announcement of {} gives an address that names another node's key",
                body.node_id
            )));
        }
        Err(e) => {
            return Err(Error::permission_denied(format!(
                "announcement of {} gives an unusable address: {e}",
                body.node_id
            )));
        }
    }
    Ok(body)
}

/// Milliseconds since the epoch: an announcement's `seq`, the announcer's
/// clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
