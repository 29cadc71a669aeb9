//! A node's long-term identity: an Ed25519 key pair.
//!
//! The private key lives in `BASEDIR/private/node.key` (PKCS#8, PEM, mode
//! 0600) and is created with the node. The node id is the base32 SHA-256 of
//! the public key: peers learn it from signed announcements and can check
//! that an announcement was made by the key it names. Transports derive
//! their own credentials (the TLS certificate) from the same key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::base32;
use crate::error::{Error, Result};

/// Where the key lives under a base directory.
pub const KEY_FILE: &str = "private/node.key";

const PEM_LABEL: &str = "PRIVATE KEY";

/// A node's key pair.
pub struct NodeKey {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.node_id())
    }
}

/// Write `data` to `path` readable by the owner only, atomically.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::from(e).context(dir.display()))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::from(e).context(tmp.display()))?;
    // `mode` applies only to a file this call creates: a leftover temp file
    // of another mode is made private before the secret goes into it.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::from(e).context(tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path).map_err(|e| Error::from(e).context(path.display()))?;
    Ok(())
}

fn pem_encode(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn pem_decode(text: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| Error::corrupt("node key file is not valid PEM"))
}

impl NodeKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| Error::internal("cannot generate a key pair"))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// A key from its PKCS#8 DER encoding.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|_| Error::corrupt("node key is not an Ed25519 PKCS#8 key"))?;
        Ok(NodeKey {
            pkcs8: der.to_vec(),
            pair,
        })
    }

    /// The key file of a base directory.
    pub fn path(basedir: &Path) -> PathBuf {
        basedir.join(KEY_FILE)
    }

    /// Load the key of a base directory.
    pub fn load(basedir: &Path) -> Result<Self> {
        let path = Self::path(basedir);
        let text = fs::read_to_string(&path).map_err(|e| {
            Error::from(e).context(format!("reading the node key {}", path.display()))
        })?;
        Self::from_pkcs8(&pem_decode(&text)?).map_err(|e| e.context(path.display()))
    }

    /// Create and save a key for a base directory that has none.
    pub fn create(basedir: &Path) -> Result<Self> {
        let path = Self::path(basedir);
        if path.exists() {
            return Err(Error::already_exists(format!("{} exists", path.display())));
        }
        let key = Self::generate()?;
        write_private(&path, pem_encode(&key.pkcs8).as_bytes())?;
        Ok(key)
    }

    /// The PKCS#8 DER encoding (secret!).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The node id: base32 of SHA-256 of the public key.
    pub fn node_id(&self) -> String {
        node_id_of(self.public_key())
    }

    /// Sign a message.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The node id belonging to a public key.
pub fn node_id_of(public_key: &[u8]) -> String {
    base32::encode(&Sha256::digest(public_key))
}

/// Check an Ed25519 signature.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .map_err(|_| Error::permission_denied("bad signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::create(dir.path()).unwrap();
        let mode = fs::metadata(NodeKey::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            NodeKey::create(dir.path()).is_err(),
            "must not overwrite a key"
        );
        // A leftover world-readable temp file does not make a secret public.
        let other = dir.path().join("private/other");
        fs::write(other.with_extension("tmp"), b"old").unwrap();
        fs::set_permissions(
            other.with_extension("tmp"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_private(&other, b"secret").unwrap();
        let mode = fs::metadata(&other).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = NodeKey::load(dir.path()).unwrap();
        assert_eq!(again.node_id(), key.node_id());
        let sig = key.sign(b"hello");
        verify(key.public_key(), b"hello", &sig).unwrap();
        assert!(verify(key.public_key(), b"hellp", &sig).is_err());
        assert!(
            !format!("{key:?}").contains(&String::from_utf8_lossy(key.pkcs8_der()).to_string())
        );
    }
}
