//! Signed announcements: what a storage server tells the queen about itself.
//!
//! The body is JSON, signed with the node's Ed25519 key; the node id is the
//! hash of that key, so a forged announcement for someone else's id fails
//! the check. The address inside names the node's TLS fingerprint, so
//! whoever trusts the announcement also pins the right connection.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tahoe_core::identity::{NodeKey, node_id_of, verify};
use tahoe_core::protocol::Announcement;
use tahoe_core::{Error, Result};

/// The largest announcement body accepted.
pub const MAX_BODY: usize = 4096;

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

/// Check an announcement and return its body.
pub fn check(a: &Announcement) -> Result<AnnouncementBody> {
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
    if body.nickname.len() > 200 || body.address.len() > 500 {
        return Err(Error::permission_denied("announcement fields too long"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &NodeKey) -> AnnouncementBody {
        AnnouncementBody {
            node_id: key.node_id(),
            nickname: "n".into(),
            address: "tahoe+tcp://x@127.0.0.1:1".into(),
            available_space: Some(5),
            version: "t".into(),
            seq: 1,
        }
    }

    #[test]
    fn signed_announcements_check_and_forgeries_do_not() {
        let key = NodeKey::generate().unwrap();
        let a = sign(&key, &body(&key)).unwrap();
        assert_eq!(check(&a).unwrap(), body(&key));
        let mut tampered = a.clone();
        let mut b = tampered.body.to_vec();
        b[5] ^= 1;
        tampered.body = Bytes::from(b);
        assert!(check(&tampered).is_err());
        // Signed by another key while claiming this key's id.
        let other = NodeKey::generate().unwrap();
        let forged = sign(&other, &body(&key)).unwrap();
        assert!(check(&forged).is_err());
    }
}
