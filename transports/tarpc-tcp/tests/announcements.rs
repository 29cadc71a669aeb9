//! Announcements checked against tarpc-tcp's addresses: the address an
//! announcement gives must pin the key that signed it.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use tahoe_core::protocol::announce::{AnnouncementBody, MAX_VERSION, check, sign};
use tahoe_core::protocol::identity::NodeKey;
use tahoe_transport_tarpc_tcp::{Identity, TarpcTcp, TarpcTcpConfig};

fn transport() -> TarpcTcp {
    TarpcTcp::new(Identity::ephemeral().unwrap(), TarpcTcpConfig::default())
}

fn body(key: &NodeKey) -> AnnouncementBody {
    AnnouncementBody {
        node_id: key.node_id(),
        nickname: "n".into(),
        address: format!("tahoe+tcp://{}@127.0.0.1:1", key.node_id()),
        available_space: Some(5),
        version: "t".into(),
        seq: 1,
    }
}

#[test]
fn signed_announcements_check_and_forgeries_do_not() {
    let t = transport();
    let key = NodeKey::generate().unwrap();
    let a = sign(&key, &body(&key)).unwrap();
    assert_eq!(check(&a, &t).unwrap(), body(&key));
    let mut tampered = a.clone();
    let mut b = tampered.body.to_vec();
    b[5] ^= 1;
    tampered.body = Bytes::from(b);
    assert!(check(&tampered, &t).is_err());
    // Signed by another key while claiming this key's id.
    let other = NodeKey::generate().unwrap();
    let forged = sign(&other, &body(&key)).unwrap();
    assert!(check(&forged, &t).is_err());
    // Its own id, but someone else's address (key fingerprint).
    let mut stolen = body(&other);
    stolen.address = body(&key).address;
    let e = check(&sign(&other, &stolen).unwrap(), &t).unwrap_err();
    assert!(e.to_string().contains("another node's key"), "{e}");
    // Fields over their limits, and addresses of no transport.
    let mut long = body(&key);
    long.version = "v".repeat(MAX_VERSION + 1);
    assert!(check(&sign(&key, &long).unwrap(), &t).is_err());
    let mut junk = body(&key);
    junk.address = "memory:x".into();
    assert!(check(&sign(&key, &junk).unwrap(), &t).is_err());
}
