//! The S3 gateway's keys: `private/s3-credentials`.
//!
//! One key per line: `ACCESS_KEY_ID SECRET_KEY DIRCAP`, separated by
//! spaces; blank lines and lines starting with `#` are skipped. The
//! directory cap is the key's root: its subdirectories are the key's
//! buckets, and nothing above or beside it can be named. The file holds
//! secrets and caps, so the gateway refuses to start when anyone but its
//! owner may read it (as OpenSSH refuses a private key).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};
use tahoe_core::format::cap::DirCap;

/// One access key.
#[derive(Clone)]
pub struct Key {
    /// What the key signs with.
    pub secret: String,
    /// The directory the key's buckets are in.
    pub root: DirCap,
}

/// Every key the gateway knows, by access key id.
#[derive(Clone, Default)]
pub struct Credentials {
    keys: HashMap<String, Key>,
}

impl Credentials {
    /// Read the file at `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Credentials> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "the S3 gateway's credentials file {} (one line per key: \
                 ACCESS_KEY_ID SECRET_KEY DIRCAP)",
                path.display()
            )
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            bail!(
                "{} may be read by others (mode {:o}): it holds secret keys; \
                 chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Credentials::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Credentials> {
        let mut keys = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, secret, cap] = fields[..] else {
                bail!(
                    "line {}: expected ACCESS_KEY_ID SECRET_KEY DIRCAP, found {} fields",
                    n + 1,
                    fields.len()
                );
            };
            let root: DirCap = crate::client::files::parse_dir_cap(cap)
                .with_context(|| format!("line {}: the key's root", n + 1))?;
            if secret.len() < 8 {
                bail!("line {}: a secret key of fewer than 8 characters", n + 1);
            }
            let key = Key {
                secret: secret.to_string(),
                root,
            };
            if keys.insert(id.to_string(), key).is_some() {
                bail!("line {}: access key id {id:?} is given twice", n + 1);
            }
        }
        Ok(Credentials { keys })
    }

    /// The key `id`, if known.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.get(id)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[async_trait::async_trait]
impl S3Auth for Credentials {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.get(access_key) {
            Some(k) => Ok(SecretKey::from(k.secret.as_str())),
            None => Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "the access key id is not in this gateway's credentials"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: &str =
        "URI:DIR2:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbba";

    #[test]
    fn lines_comments_and_mistakes() {
        let c = Credentials::parse(&format!("# a comment\n\nAKID1 secret-one {CAP}\n")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("AKID1").unwrap().secret, "secret-one");
        assert!(c.get("AKID2").is_none());
        for bad in [
            "AKID1 secret-one".to_string(),
            format!("AKID1 secret-one {CAP} extra"),
            format!("AKID1 short {CAP}"),
            "AKID1 secret-one URI:CHK:nope".to_string(),
            format!("AKID1 secret-one {CAP}\nAKID1 secret-two {CAP}"),
        ] {
            assert!(Credentials::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s3-credentials");
        std::fs::write(&path, format!("AKID1 secret-one {CAP}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Credentials::load(&path).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Credentials::load(&path).unwrap().len(), 1);
    }
}
