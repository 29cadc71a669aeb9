//! Bucket names and object keys as paths in the key's root.
//!
//! A bucket is a subdirectory of the root; an object key's `/`-separated
//! parts are the directories under the bucket and, last, the file's name.
//! A key that cannot be a path is refused before anything is read: an
//! empty part (`a//b`, a leading `/`), a `.` or `..` part (which would
//! name another place), NUL, a part that is not a valid entry name, or
//! more parts than a path may have, or text not in Unicode NFC (entry
//! names are NFC: `cafe\u{301}` would be stored as `caf\u{e9}`, and two
//! keys would name one object). A key ending in `/` names a directory
//! (a "folder marker" some clients make with an empty body).

use crate::fs::Fs;
use crate::fs::tree::MAX_DEPTH;

/// An object key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The bucket's name, then the key's parts.
    pub path: Vec<String>,
    /// The key ended in `/`: a directory, not a file.
    pub folder: bool,
}

/// Why a key or bucket name was refused.
pub type NameError = String;

/// The path of `bucket` (a name the grid can hold as an entry).
pub fn bucket_path(bucket: &str) -> Result<Vec<String>, NameError> {
    if bucket.is_empty() || bucket.contains('/') {
        return Err(format!("{bucket:?} cannot be a bucket's name"));
    }
    Ok(vec![entry_name(bucket)?])
}

/// The path of `key` in `bucket`.
pub fn object_path(bucket: &str, key: &str) -> Result<ObjectPath, NameError> {
    let mut path = bucket_path(bucket)?;
    if key.is_empty() {
        return Err("an empty object key".into());
    }
    let (body, folder) = match key.strip_suffix('/') {
        Some(b) => (b, true),
        None => (key, false),
    };
    for part in body.split('/') {
        match part {
            "" => {
                return Err(format!(
                    "the key {key:?} has an empty part (`//` or a leading `/`): \
                     keys here are paths of directories"
                ));
            }
            "." | ".." => {
                return Err(format!("the key {key:?} has a {part:?} part"));
            }
            _ => {}
        }
        if part.contains('\0') {
            return Err("a key cannot hold NUL".into());
        }
        path.push(entry_name(part).map_err(|e| format!("the key {key:?}: {e}"))?);
        if path.len() > MAX_DEPTH {
            return Err(format!("keys of more than {MAX_DEPTH} parts are refused"));
        }
    }
    Ok(ObjectPath { path, folder })
}

/// `part` as an entry name, refused unless it is one already (NFC).
pub fn entry_name(part: &str) -> Result<String, NameError> {
    let name = Fs::name(part.as_bytes()).map_err(|e| e.to_string())?;
    if name != part {
        return Err(format!(
            "{part:?} is not in Unicode NFC, as names on the grid are"
        ));
    }
    Ok(name)
}

/// The key of the object at `path` under its bucket (`path[0]`).
pub fn key_of(path: &[String]) -> String {
    path.get(1..).unwrap_or_default().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_paths_under_their_bucket() {
        let p = object_path("b", "photos/2026/a.jpg").unwrap();
        assert_eq!(p.path, ["b", "photos", "2026", "a.jpg"]);
        assert!(!p.folder);
        assert_eq!(key_of(&p.path), "photos/2026/a.jpg");
        let f = object_path("b", "photos/").unwrap();
        assert_eq!(f.path, ["b", "photos"]);
        assert!(f.folder);
    }

    #[test]
    fn keys_that_name_another_place_are_refused() {
        for bad in [
            "../x",
            "a/../../b",
            "./a",
            "a/./b",
            "a//b",
            "/a",
            "a\0b",
            "",
            "/",
        ] {
            assert!(object_path("b", bad).is_err(), "{bad:?}");
        }
        assert!(object_path("", "a").is_err());
        // Not NFC: it would be stored under another name.
        assert!(object_path("b", "cafe\u{301}").is_err());
        assert!(object_path("b", "caf\u{e9}").is_ok());
        assert!(bucket_path("cafe\u{301}").is_err());
        assert!(object_path("a/b", "a").is_err());
        let deep = vec!["d"; MAX_DEPTH].join("/");
        assert!(object_path("b", &deep).is_err());
    }
}
