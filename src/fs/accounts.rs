//! SFTP accounts: Tahoe-LAFS's `private/accounts` file.
//!
//! Each line that is neither blank nor a `#` comment is
//! `USERNAME KEY-TYPE BASE64-KEY ROOTCAP`: the user logs in with the
//! private half of that OpenSSH public key and sees the directory ROOTCAP
//! names, and nothing outside it. A user may have several lines (several
//! keys), all with one root. Tahoe-LAFS 1.20 takes keys only and so do we:
//! a line of three fields (a password) is refused. A bad line is named by
//! its number, never by its text, which holds a cap.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use tahoe_core::format::cap::DirCap;

/// One account.
#[derive(Debug, Clone)]
pub struct Account {
    /// The directory it sees.
    pub root: DirCap,
    /// Its public keys, each in SSH's wire encoding (what a client offers).
    pub keys: Vec<Vec<u8>>,
}

/// Every account, by user name.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    users: BTreeMap<String, Account>,
}

impl Accounts {
    /// Read the accounts file at `path`.
    pub fn load(path: &Path) -> Result<Accounts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the accounts file {}", path.display()))?;
        Accounts::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parse an accounts file's text.
    pub fn parse(text: &str) -> Result<Accounts> {
        let mut users: BTreeMap<String, Account> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (user, kind, key, cap) = match fields[..] {
                [user, kind, key, cap] => (user, kind, key, cap),
                [_, _, _] => bail!(
                    "line {n}: passwords are not accepted; give the user's SSH public key \
                     (USERNAME KEY-TYPE BASE64-KEY ROOTCAP)"
                ),
                _ => bail!(
                    "line {n}: expected USERNAME KEY-TYPE BASE64-KEY ROOTCAP (4 fields), found {}",
                    fields.len()
                ),
            };
            if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") {
                bail!("line {n}: {kind:?} is not an SSH key type (ssh-ed25519, ssh-rsa, ...)");
            }
            let blob = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|_| anyhow::anyhow!("line {n}: the key is not base64"))?;
            if wire_type(&blob) != Some(kind.as_bytes()) {
                bail!("line {n}: the key does not hold a {kind} key");
            }
            let root = crate::client::files::parse_dir_cap(cap)
                .map_err(|_| anyhow::anyhow!("line {n}: the root is not a directory cap"))?;
            match users.get_mut(user) {
                Some(a) if a.root != root => {
                    bail!("line {n}: user {user:?} was given another root on an earlier line")
                }
                Some(a) => a.keys.push(blob),
                None => {
                    users.insert(
                        user.to_string(),
                        Account {
                            root,
                            keys: vec![blob],
                        },
                    );
                }
            }
        }
        Ok(Accounts { users })
    }

    /// The account of `user` if `key` (wire encoding) is one of its keys.
    pub fn login(&self, user: &str, key: &[u8]) -> Option<&Account> {
        let a = self.users.get(user)?;
        a.keys
            .iter()
            .any(|k| tahoe_core::kinds::storage::constant_time_eq(k, key))
            .then_some(a)
    }

    /// Whether `user` has an account.
    pub fn has(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many accounts.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The key type a wire-encoded public key begins with.
fn wire_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    blob.get(4..4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: &str =
        "URI:DIR2:ovjy4yhylqlfoqg2vcze36dhde:4d4f47qko2xm5g7osgo2yyidi5m4muyo2vjjy53q4vjju2u55mfa";
    // ssh-keygen -t ed25519: the wire form of a public key.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOkSIWCl6SHcObvg6+f/4+ul5Ao1ONzx7i3tqNHwmK0R";

    #[test]
    fn parses_key_lines_and_logs_in_by_key() {
        let text = format!("# comment\n\ncarol ssh-ed25519 {KEY} {CAP}\n");
        let a = Accounts::parse(&text).expect("parses");
        assert_eq!(a.len(), 1);
        let blob = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .expect("b64");
        assert!(a.login("carol", &blob).is_some());
        assert!(a.login("dave", &blob).is_none());
        let mut other = blob.clone();
        let last = other.len() - 1;
        other[last] ^= 1;
        assert!(a.login("carol", &other).is_none());
    }

    #[test]
    fn bad_lines_are_named_by_number_never_by_text() {
        for (text, want) in [
            (format!("carol secret {CAP}\n"), "line 1: passwords"),
            (
                format!("\ncarol ssh-rsa {KEY} {CAP}\n"),
                "line 2: the key does not hold",
            ),
            (
                "carol ssh-ed25519 %%% URI:DIR2:x:y\n".to_string(),
                "line 1: the key is not base64",
            ),
            (
                format!("carol ssh-ed25519 {KEY} URI:CHK:a:b:1:2:3\n"),
                "line 1: the root",
            ),
        ] {
            let e = format!("{:#}", Accounts::parse(&text).expect_err("refused"));
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains("URI:"), "a cap in {e}");
        }
    }
}
