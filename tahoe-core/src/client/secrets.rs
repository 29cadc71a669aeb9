//! The secrets a client hands storage servers, derived one per server.
//!
//! A storage server learns only secrets made for it: the lease renew and
//! cancel secrets and the upload secret of a share are hashes of a
//! node-wide secret, the file's storage index and the server's id, in that
//! order, so what one server was sent is worth nothing at another (it
//! cannot close another server's buckets, nor renew or cancel leases
//! there), while the client that made a lease can always make its secrets
//! again to renew it. This is Tahoe-LAFS's lease-secret scheme
//! (`hashutil.py`: client, then file, then bucket secrets), with the same
//! tags and the same formulas (`tests/data/tahoe-lease-secrets.json` holds
//! Tahoe 1.20's own outputs). The client and file secrets are the ones
//! Tahoe derives from the same `private/secret`; a per-server secret is
//! Tahoe's formula over our server id (the bytes of the node id string),
//! where Tahoe's servers are named by 20-byte ids of their own, so it never
//! equals what Tahoe would send a Tahoe server. The upload secret follows
//! the same pattern under tags of our own (Tahoe's Foolscap protocol used
//! object references instead).
//!
//! Deriving the upload secret (rather than drawing it at random) lets a
//! retry of an interrupted upload present the same secret and take over
//! the buckets it left pending.
//!
//! A server's id enters as the bytes of its node id string.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::hash::{tagged_hash, tagged_pair_hash};
use crate::kinds::storage::StorageIndex;
use crate::protocol::Secret;
use crate::protocol::identity::write_private;

/// Where a node keeps its lease secret (Tahoe's name), base32.
pub const SECRET_FILE: &str = "private/secret";

/// Tags (Tahoe-LAFS's for leases and write enablers, ours for uploads).
mod tags {
    /// Node-wide renewal secret (Tahoe hashes the tag under the secret).
    pub(super) const CLIENT_RENEWAL: &[u8] = b"allmydata_client_renewal_secret_v1";
    /// Node-wide cancel secret.
    pub(super) const CLIENT_CANCEL: &[u8] = b"allmydata_client_cancel_secret_v1";
    /// Per-file renewal secret.
    pub(super) const FILE_RENEWAL: &[u8] = b"allmydata_file_renewal_secret_v1";
    /// Per-file cancel secret.
    pub(super) const FILE_CANCEL: &[u8] = b"allmydata_file_cancel_secret_v1";
    /// Per-server renewal secret.
    pub(super) const BUCKET_RENEWAL: &[u8] = b"allmydata_bucket_renewal_secret_v1";
    /// Per-server cancel secret.
    pub(super) const BUCKET_CANCEL: &[u8] = b"allmydata_bucket_cancel_secret_v1";
    /// Node-wide upload secret.
    pub(super) const CLIENT_UPLOAD: &[u8] = b"tahoe-rs_client_upload_secret_v1";
    /// Per-file upload secret.
    pub(super) const FILE_UPLOAD: &[u8] = b"tahoe-rs_file_upload_secret_v1";
    /// Per-server upload secret.
    pub(super) const BUCKET_UPLOAD: &[u8] = b"tahoe-rs_bucket_upload_secret_v1";
    /// A mutable file's write key → its write-enabler master.
    pub(super) const WRITE_ENABLER_MASTER: &[u8] =
        b"allmydata_mutable_writekey_to_write_enabler_master_v1";
    /// Write-enabler master and server id → that server's write enabler.
    pub(super) const WRITE_ENABLER: &[u8] =
        b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1";
}

/// The secrets one server receives for one file.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecrets {
    /// Lease renewal.
    pub renew: Secret,
    /// Lease cancellation.
    pub cancel: Secret,
    /// Proves ownership of this upload's buckets on this server.
    pub upload: Secret,
}

impl std::fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecrets(<secret>)")
    }
}

/// A node's lease secret: the root every per-server secret derives from.
#[derive(Clone)]
pub struct ClientSecret([u8; 32]);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<secret>)")
    }
}

impl ClientSecret {
    /// A secret from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ClientSecret(bytes)
    }

    /// A fresh random secret.
    pub fn random() -> Result<Self> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| Error::internal(format!("random: {e}")))?;
        Ok(ClientSecret(b))
    }

    /// The secret of the node in `basedir`, made and saved (0600) the first
    /// time it is needed.
    pub fn load_or_create(basedir: &Path) -> Result<Self> {
        let path = basedir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => crate::base32::decode_array::<32>(text.trim())
                .map(ClientSecret)
                .map_err(|e| e.context(path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = Self::random()?;
                write_private(
                    &path,
                    format!("{}\n", crate::base32::encode(&s.0)).as_bytes(),
                )?;
                Ok(s)
            }
            Err(e) => Err(Error::from(e).context(path.display())),
        }
    }

    /// The node-wide secret under `tag` (Tahoe hashes the tag with the
    /// secret as the hash's tag: `my_renewal_secret_hash` and the like).
    fn client(&self, tag: &[u8]) -> Secret {
        tagged_hash(&self.0, tag)
    }

    /// The per-file secrets for storage index `si`.
    pub fn for_file(&self, si: &StorageIndex) -> FileSecrets {
        let client = |tag: &[u8]| self.client(tag);
        FileSecrets {
            renew: tagged_pair_hash(tags::FILE_RENEWAL, &client(tags::CLIENT_RENEWAL), &si.0),
            cancel: tagged_pair_hash(tags::FILE_CANCEL, &client(tags::CLIENT_CANCEL), &si.0),
            upload: tagged_pair_hash(tags::FILE_UPLOAD, &client(tags::CLIENT_UPLOAD), &si.0),
        }
    }
}

/// A file's secrets, before they are made per server.
#[derive(Clone)]
pub struct FileSecrets {
    renew: Secret,
    cancel: Secret,
    upload: Secret,
}

impl std::fmt::Debug for FileSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileSecrets(<secret>)")
    }
}

impl FileSecrets {
    /// Random per-file secrets (uploads by programs without a node secret;
    /// their leases cannot be renewed later).
    pub fn random() -> Result<Self> {
        let mut s = [[0u8; 32]; 3];
        for x in &mut s {
            getrandom::fill(x).map_err(|e| Error::internal(format!("random: {e}")))?;
        }
        Ok(FileSecrets {
            renew: s[0],
            cancel: s[1],
            upload: s[2],
        })
    }

    /// What the server with node id `server_id` is given.
    pub fn for_server(&self, server_id: &str) -> ServerSecrets {
        let id = server_id.as_bytes();
        ServerSecrets {
            renew: tagged_pair_hash(tags::BUCKET_RENEWAL, &self.renew, id),
            cancel: tagged_pair_hash(tags::BUCKET_CANCEL, &self.cancel, id),
            upload: tagged_pair_hash(tags::BUCKET_UPLOAD, &self.upload, id),
        }
    }
}

/// The write enabler of a mutable slot at one server, from the slot's
/// write key: only write-cap holders can make it, and each server gets its
/// own.
pub fn write_enabler(write_key: &[u8], server_id: &str) -> Secret {
    let master = write_enabler_master(write_key);
    tagged_pair_hash(tags::WRITE_ENABLER, &master, server_id.as_bytes())
}

/// A write key's write-enabler master, the same at every server.
fn write_enabler_master(write_key: &[u8]) -> Secret {
    tagged_hash(tags::WRITE_ENABLER_MASTER, write_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_and_file_gets_its_own_secrets() {
        let c = ClientSecret::from_bytes([7; 32]);
        let (a, b) = (StorageIndex([1; 16]), StorageIndex([2; 16]));
        let fa = c.for_file(&a);
        let s1 = fa.for_server("server-one");
        let s2 = fa.for_server("server-two");
        assert_ne!(s1.upload, s2.upload);
        assert_ne!(s1.renew, s2.renew);
        assert_ne!(s1.cancel, s2.cancel);
        assert_ne!(s1.upload, s1.renew);
        assert_ne!(c.for_file(&b).for_server("server-one"), s1);
        // Deterministic: the same client can renew its leases later.
        assert_eq!(c.for_file(&a).for_server("server-one"), s1);
        let other = ClientSecret::from_bytes([8; 32]);
        assert_ne!(other.for_file(&a).for_server("server-one"), s1);
        assert_ne!(write_enabler(b"k", "one"), write_enabler(b"k", "two"));
        assert_ne!(write_enabler(b"k", "one"), write_enabler(b"j", "one"));
    }

    /// Values computed by Tahoe-LAFS 1.20's own `allmydata.util.hashutil`
    /// (`scripts/gen_tahoe_lease_secrets.py`); nothing expected is
    /// computed here.
    const TAHOE: &str = include_str!("../../../tests/data/tahoe-lease-secrets.json");

    fn tahoe() -> serde_json::Value {
        let doc: serde_json::Value = serde_json::from_str(TAHOE).expect("fixture JSON");
        assert_eq!(doc["tahoe_version"], "1.20.0");
        doc
    }

    fn field<'a>(case: &'a serde_json::Value, name: &str) -> &'a str {
        case[name]
            .as_str()
            .unwrap_or_else(|| panic!("fixture field {name} missing in {case}"))
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        assert_eq!(hex.len() % 2, 0, "odd-length hex {hex}");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cases of list `name`, checked to be as many as the file says and
    /// not none.
    fn cases<'a>(doc: &'a serde_json::Value, name: &str, count: &str) -> &'a [serde_json::Value] {
        let cases = doc[name].as_array().expect("case list");
        assert!(!cases.is_empty(), "no {name} in the fixture");
        assert_eq!(Some(cases.len() as u64), doc[count].as_u64(), "{count}");
        cases
    }

    /// The peer id string, whose UTF-8 bytes are the ones Tahoe was given.
    fn peer_id(case: &serde_json::Value) -> &str {
        let id = field(case, "peer_id");
        assert_eq!(id.as_bytes(), from_hex(field(case, "peer_id_hex")));
        id
    }

    #[test]
    fn lease_secrets_match_tahoe() {
        let doc = tahoe();
        let cases = cases(&doc, "lease_cases", "num_lease_cases");
        let mut checked = 0;
        for case in cases {
            let secret: [u8; 32] = from_hex(field(case, "client_secret"))
                .try_into()
                .expect("32-byte secret");
            let si = StorageIndex(
                from_hex(field(case, "storage_index"))
                    .try_into()
                    .expect("16-byte storage index"),
            );
            let peer = peer_id(case);
            let client = ClientSecret::from_bytes(secret);
            let file = client.for_file(&si);
            let server = file.for_server(peer);
            let ours = [
                ("client_renewal_secret", client.client(tags::CLIENT_RENEWAL)),
                ("client_cancel_secret", client.client(tags::CLIENT_CANCEL)),
                ("file_renewal_secret", file.renew),
                ("file_cancel_secret", file.cancel),
                ("bucket_renewal_secret", server.renew),
                ("bucket_cancel_secret", server.cancel),
            ];
            for (name, value) in ours {
                assert_eq!(to_hex(&value), field(case, name), "{name} of {case}");
            }
            checked += 1;
        }
        assert_eq!(checked, cases.len());
    }

    #[test]
    fn write_enablers_match_tahoe() {
        let doc = tahoe();
        let cases = cases(&doc, "write_enabler_cases", "num_write_enabler_cases");
        let mut checked = 0;
        for case in cases {
            let key = from_hex(field(case, "write_key"));
            let peer = peer_id(case);
            assert_eq!(
                to_hex(&write_enabler_master(&key)),
                field(case, "write_enabler_master"),
                "write_enabler_master of {case}"
            );
            assert_eq!(
                to_hex(&write_enabler(&key, peer)),
                field(case, "write_enabler"),
                "write_enabler of {case}"
            );
            checked += 1;
        }
        assert_eq!(checked, cases.len());
    }

    #[test]
    fn saved_once_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ClientSecret::load_or_create(dir.path()).expect("create");
        let b = ClientSecret::load_or_create(dir.path()).expect("load");
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{a:?}").contains(&crate::base32::encode(&a.0)));
    }
}
