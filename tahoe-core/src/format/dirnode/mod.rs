//! The packed form of a directory: Tahoe-LAFS's DIR2 format (its
//! `docs/specifications/dirnodes.rst`, `allmydata/dirnode.py`), spec in
//! `docs/directories.md`.
//!
//! A directory is a file (mutable for `URI:DIR2:`, immutable for
//! `URI:DIR2-CHK:`/`URI:DIR2-LIT:`) whose contents are one netstring per
//! child, sorted by name, each holding four netstrings:
//!
//! ```text
//! name      UTF-8, NFC
//! ro_uri    the child's read cap, in the clear
//! rwcap     salt(16) || AES-128-CTR(key, write cap) || mac(32)   mutable directories
//!           key = H(tag, salt, directory write key), salt = H(tag, write cap)
//!           (empty in immutable directories)
//! metadata  a JSON object, as Python's json.dumps writes it
//! ```
//!
//! A directory's read-only holder sees names, read caps and metadata but
//! not the write caps: those are encrypted under the directory's write
//! key, which the read cap does not yield.
//!
//! Parsing checks everything a hostile writer controls. A broken outer
//! netstring makes the whole directory unreadable (`Corrupt`); anything
//! wrong inside one entry (a name that is empty, has `/` or NUL, is `.` or
//! `..` or too long; a duplicate name; a cap that does not parse; a write
//! cap in the read-cap field; a malformed rwcap; metadata that is not a
//! JSON object) skips that entry and reports it in
//! [`Directory::skipped`]. Names not in NFC are normalised, as
//! Tahoe-LAFS does on reading. Skipped entries are not written back when
//! the directory is next changed (Tahoe-LAFS drops them the same way):
//! they cannot be looked up or read, only reported.

mod entry;
pub mod json;
mod metadata;
mod pack;
mod seal;

pub use entry::{
    ChildCap, Entry, MAX_CAP_LEN, MAX_METADATA_LEN, MAX_NAME_LEN, Metadata, Node, Replace, Skipped,
    normalize_name,
};
pub use metadata::update_metadata;
pub use pack::Directory;
pub use seal::WriteKey;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Result};
    use crate::format::cap::Cap;
    use crate::format::hash::netstring;
    use crate::kinds::cipher::Cipher;
    use bytes::Bytes;
    use std::sync::Arc;

    const CHK: &str = "URI:CHK:qshmn2agxxnlfutayetlh4l4ny:hl6wzvjixamvzntxnpzpnitevjacksukfkkyncvzhma5fns27awa:3:10:1048576";
    const SSK: &str =
        "URI:SSK:ucieqfwyvfpi54i77vtgyo3yae:bfngdsfcqv4gjdhixqqy3y2hj345mz4vzmtknlewftkiiuuuu4qq";

    /// A stand-in keystream (XOR with the key): these tests are about
    /// parsing, the Tahoe fixtures check the real cipher.
    struct Xor;
    impl Cipher for Xor {
        fn name(&self) -> &str {
            "xor"
        }
        fn key_len(&self) -> usize {
            16
        }
        fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= key[(offset as usize + i) % 16];
            }
            Ok(())
        }
    }

    fn key() -> WriteKey {
        WriteKey {
            key: [7; 16],
            cipher: Arc::new(Xor),
        }
    }

    fn entry(name: &[u8], ro: &str, rw: &[u8], md: &str) -> Vec<u8> {
        let mut body = netstring(name);
        body.extend(netstring(ro.as_bytes()));
        body.extend(netstring(rw));
        body.extend(netstring(md.as_bytes()));
        netstring(&body)
    }

    fn parse(data: Vec<u8>) -> Directory {
        Directory::parse(Bytes::from(data), true, Some(key())).unwrap()
    }

    fn skipped_for(data: Vec<u8>) -> Vec<String> {
        let d = parse(data);
        assert!(d.is_empty(), "hostile entry was taken");
        d.skipped().iter().map(|s| s.reason.clone()).collect()
    }

    #[test]
    fn hostile_entries_are_skipped_with_a_reason() {
        let empty_rw = key().seal("").unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (entry(b"a/b", CHK, &empty_rw, "{}"), "'/'"),
            (entry(b"a\0b", CHK, &empty_rw, "{}"), "NUL"),
            (entry(b"", CHK, &empty_rw, "{}"), "empty"),
            (entry(b"..", CHK, &empty_rw, "{}"), "not allowed"),
            (entry(b".", CHK, &empty_rw, "{}"), "not allowed"),
            (entry(b"\xff\xfe", CHK, &empty_rw, "{}"), "UTF-8"),
            (
                entry(&[b'x'; MAX_NAME_LEN + 1], CHK, &empty_rw, "{}"),
                "longer",
            ),
            (
                entry(b"bad-cap", "URI:CHK:zzz", &empty_rw, "{}"),
                "read cap",
            ),
            (entry(b"clear-write", SSK, &empty_rw, "{}"), "in the clear"),
            (entry(b"short-rw", CHK, b"0123456789", "{}"), "fewer than"),
            (entry(b"md-list", CHK, &empty_rw, "[1, 2]"), "JSON object"),
            (entry(b"md-bad", CHK, &empty_rw, "{"), "JSON object"),
        ];
        for (data, why) in cases {
            let reasons = skipped_for(data);
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].contains(why), "{reasons:?} lacks {why:?}");
        }
        // Three netstrings instead of four inside an entry.
        let mut body = netstring(b"x");
        body.extend(netstring(CHK.as_bytes()));
        body.extend(netstring(b""));
        assert_eq!(skipped_for(netstring(&body)).len(), 1);
    }

    #[test]
    fn immutable_directories_hold_nothing_mutable() {
        let ssk_ro = SSK.parse::<Cap>().unwrap().read_only().to_string();
        for data in [
            entry(b"rw", CHK, &key().seal(SSK).unwrap(), "{}"),
            entry(b"mutable", &ssk_ro, b"", "{}"),
        ] {
            let d = Directory::parse(Bytes::from(data), false, None).unwrap();
            assert!(d.is_empty() && d.skipped().len() == 1, "{:?}", d.skipped());
        }
    }

    #[test]
    fn duplicates_keep_the_first_and_names_are_normalised() {
        let empty_rw = key().seal("").unwrap();
        let mut data = entry("cafe\u{301}".as_bytes(), CHK, &empty_rw, r#"{"n": 1}"#);
        data.extend(entry("café".as_bytes(), CHK, &empty_rw, r#"{"n": 2}"#));
        let d = parse(data);
        assert_eq!(d.len(), 1);
        assert_eq!(d.get("café").unwrap().metadata()["n"], 1);
        assert!(d.get("cafe\u{301}").is_some(), "lookups normalise too");
        assert_eq!(d.skipped().len(), 1);
        assert!(d.skipped()[0].reason.contains("same name"));
    }

    #[test]
    fn broken_structure_is_an_error_not_a_panic() {
        for data in [
            b"99999999999:x,".to_vec(),
            b"5:abc".to_vec(),
            b"3:abc".to_vec(),
            b"03:abc,".to_vec(),
            b"3:abc;".to_vec(),
            b"x:abc,".to_vec(),
            b":".to_vec(),
            b"18446744073:".to_vec(),
        ] {
            let e = Directory::parse(Bytes::from(data.clone()), true, Some(key())).err();
            assert_eq!(
                e.map(|e| e.kind()),
                Some(ErrorKind::Corrupt),
                "{:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    #[test]
    fn unknown_caps_survive_and_future_kinds_are_not_errors() {
        let empty_rw = key().seal("").unwrap();
        let data = entry(b"f", "URI:NEWKIND:abc", &empty_rw, "{}");
        let d = parse(data.clone());
        assert_eq!(
            d.node("f").unwrap().unwrap().read,
            Some(ChildCap::Unknown("URI:NEWKIND:abc".into()))
        );
        assert_eq!(d.pack().unwrap(), data);
    }

    #[test]
    fn write_caps_are_sealed_and_checked() {
        let cap: Cap = SSK.parse().unwrap();
        let mut d = Directory::new(true, Some(key()));
        d.set("f", Node::from_cap(cap.clone()), None, Replace::Never, 1.5)
            .unwrap();
        let packed = d.pack().unwrap();
        assert!(
            !packed.windows(10).any(|w| w == &SSK.as_bytes()[8..18]),
            "the write cap is in the clear"
        );
        let back = parse(packed.clone());
        let node = back.node("f").unwrap().unwrap();
        assert_eq!(node.write, Some(ChildCap::Known(cap.clone())));
        // A read-only holder sees the read cap only.
        let ro = Directory::parse(Bytes::from(packed.clone()), true, None).unwrap();
        assert_eq!(ro.node("f").unwrap().unwrap().write, None);
        // A flipped byte in the sealed cap fails its MAC.
        let at = packed.windows(2).position(|w| w == b"f,").unwrap() + 2;
        let mut bad = packed.clone();
        let ro_len = cap.read_only().to_string().len();
        let sealed_at = at + ro_len.to_string().len() + 1 + ro_len + 1 + 3 + 20;
        bad[sealed_at] ^= 1;
        let e = parse(bad).node("f").unwrap_err();
        assert!(e.to_string().contains("MAC"), "{e}");
        // A write cap sealed beside someone else's read cap is refused.
        let other = "URI:SSK-RO:czytd764lgjmb2yx3ldvqc4jre:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let forged = entry(b"f", other, &key().seal(SSK).unwrap(), "{}");
        let e = parse(forged).node("f").unwrap_err();
        assert!(e.to_string().contains("different"), "{e}");
    }

    #[test]
    fn replace_rules_and_metadata_times() {
        let dir_cap: Cap = "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10:133".parse().unwrap();
        let file: Cap = CHK.parse().unwrap();
        let mut d = Directory::new(true, Some(key()));
        d.set("d", Node::from_cap(dir_cap), None, Replace::Never, 1.0)
            .unwrap();
        d.set("f", Node::from_cap(file.clone()), None, Replace::Never, 1.0)
            .unwrap();
        let again = |d: &mut Directory, name: &str, r| {
            d.set(name, Node::from_cap(file.clone()), None, r, 2.0)
                .map_err(|e| e.kind())
        };
        assert_eq!(
            again(&mut d, "f", Replace::Never),
            Err(ErrorKind::AlreadyExists)
        );
        assert_eq!(
            again(&mut d, "d", Replace::OnlyFiles),
            Err(ErrorKind::AlreadyExists)
        );
        assert_eq!(again(&mut d, "f", Replace::OnlyFiles), Ok(()));
        assert_eq!(again(&mut d, "d", Replace::Always), Ok(()));
        let t = &d.get("f").unwrap().metadata()["tahoe"];
        assert_eq!(
            (t["linkcrtime"].as_f64(), t["linkmotime"].as_f64()),
            (Some(1.0), Some(2.0))
        );
        // User metadata replaces the user's keys, never the tahoe key.
        let mut md = Metadata::new();
        md.insert("tahoe".into(), serde_json::json!({"linkcrtime": 0}));
        md.insert("tag".into(), serde_json::json!("x"));
        d.set(
            "f",
            Node::from_cap(file.clone()),
            Some(md),
            Replace::Always,
            3.0,
        )
        .unwrap();
        let m = d.get("f").unwrap().metadata();
        assert_eq!(m["tag"], "x");
        assert_eq!(m["tahoe"]["linkcrtime"].as_f64(), Some(1.0));
        assert_eq!(d.remove("nope").unwrap_err().kind(), ErrorKind::NotFound);
        let link = |d: &mut Directory, name: &str| {
            d.set(
                name,
                Node::from_cap(file.clone()),
                None,
                Replace::Always,
                1.0,
            )
        };
        assert!(link(&mut d, "a/b").is_err());
        // Read-only and immutable directories refuse changes.
        let mut ro = Directory::new(true, None);
        assert!(link(&mut ro, "x").is_err());
        let mut imm = Directory::new(false, None);
        assert!(link(&mut imm, "x").is_err());
        assert!(
            imm.insert("x", Node::from_cap(SSK.parse().unwrap()), Metadata::new())
                .is_err()
        );
        imm.insert("x", Node::from_cap(file), Metadata::new())
            .unwrap();
    }
}
