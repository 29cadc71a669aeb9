//! Multipart uploads: parts spooled privately, one immutable file at the
//! end.
//!
//! Each upload is a directory `BASEDIR/tmp/s3-uploads/ID/` (0700, in the
//! node's private spool) holding `upload.json` (which key started it, for
//! which bucket and object, with the object's headers) and one file per
//! part, `part-NNNNN` (0600), beside `part-NNNNN.md5`, its MD5 in hex. A
//! part arrives as `part-NNNNN.tmp` and is renamed into place once its
//! body is whole and its `Content-MD5` (if sent) checked, so a part sent
//! again replaces the first only when it is complete, and a client that
//! disconnects leaves nothing. The object's convergent key is hashed as
//! the parts arrive ([`super::parts_key`]). Completing reads the parts in
//! order as one source for the upload (no copy is made) and then removes the
//! directory; so does aborting; uploads left longer than
//! `s3.multipart_expiry_secs` are removed by [`Uploads::expire`].
//!
//! An upload ID is 26 base32 letters made here; any other ID is refused
//! before it is used as a file name.

use std::fs::File;
use std::io::Write as _;

use s3s::crypto::Checksum as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use s3s::{S3Error, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tahoe_core::client::source::Source;

use super::meta::{ObjectMeta, hex};
use super::parts_key::{PartsKeys, part_path};
use tahoe_core::client::immutable::upload::{KeyHasher, PrecomputedKey};

/// `upload.json`'s format (absent in the file: 1).
pub const UPLOAD_FORMAT: u32 = 1;

fn first_format() -> u32 {
    1
}

/// What `upload.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    /// Its format ([`UPLOAD_FORMAT`]); a newer one is refused by name.
    #[serde(default = "first_format")]
    pub version: u32,
    /// The access key id that started it: only that key may use it.
    pub key_id: String,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The object's headers (its ETag is made at completion).
    pub meta: ObjectMeta,
    /// When it was started (seconds since the epoch).
    pub created: u64,
}

/// One part as stored.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its number (1 to 10,000).
    pub number: u32,
    /// Hex MD5 of its bytes.
    pub md5: String,
    /// Bytes.
    pub size: u64,
    /// When it was stored.
    pub stored: SystemTime,
}

/// The most parts an upload may have, as S3 allows.
pub const MAX_PARTS: u32 = 10_000;
/// The least a part but the last may hold, as S3 requires.
pub const MIN_PART: u64 = 5 << 20;

/// Every upload in progress (see the module docs).
pub struct Uploads {
    dir: PathBuf,
    expiry: Duration,
    keys: PartsKeys,
}

impl Uploads {
    /// Uploads kept in `dir` (made 0700 when missing), removed when older
    /// than `expiry`.
    pub fn new(dir: PathBuf, expiry: Duration) -> anyhow::Result<Uploads> {
        crate::basedir::private_dir(&dir)?;
        Ok(Uploads {
            dir,
            expiry,
            keys: PartsKeys::default(),
        })
    }

    /// Start an upload; its ID.
    pub fn create(&self, up: &Upload) -> S3Result<String> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| internal(format!("random: {e}")))?;
        let id = tahoe_core::base32::encode(&b);
        let dir = self.dir.join(&id);
        std::fs::create_dir(&dir).map_err(internal)?;
        let text = serde_json::to_vec(up).map_err(internal)?;
        write_private(&dir.join("upload.json"), &text).map_err(internal)?;
        Ok(id)
    }

    /// The upload `id`, when it exists and `key_id` started it.
    pub fn open(&self, key_id: &str, id: &str) -> S3Result<Upload> {
        let dir = self.path_of(id)?;
        let text = std::fs::read(dir.join("upload.json")).map_err(|_| no_such_upload())?;
        let up: Upload = serde_json::from_slice(&text).map_err(|_| no_such_upload())?;
        // Another key learns nothing, not even that the upload exists.
        if up.key_id != key_id {
            return Err(no_such_upload());
        }
        if up.version > UPLOAD_FORMAT {
            return Err(internal(format!(
                "multipart upload {id} is format {}, newer than this tahoe reads ({UPLOAD_FORMAT})",
                up.version
            )));
        }
        Ok(up)
    }

    /// Hash the object's convergent key with `hasher` as the parts of
    /// `id` arrive ([`Self::fold`]).
    pub fn fold_with(&self, id: &str, hasher: KeyHasher) {
        self.keys
            .start(id, hasher, |id| self.path_of(id).is_ok_and(|d| d.exists()));
    }

    /// Hash the parts of `id` stored since the last time, in order.
    pub async fn fold(&self, id: &str) {
        if let Ok(dir) = self.path_of(id) {
            self.keys.advance(id, dir).await;
        }
    }

    /// The convergent key of the object `source` (from [`Self::assemble`]
    /// of `id`) holds, when its parts are the files hashed as they
    /// arrived.
    pub async fn folded_key(&self, id: &str, source: &PartsSource) -> Option<PrecomputedKey> {
        self.keys.key(id, &source.parts).await
    }

    fn path_of(&self, id: &str) -> S3Result<PathBuf> {
        let ok = id.len() == 26 && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
        if !ok {
            return Err(no_such_upload());
        }
        Ok(self.dir.join(id))
    }

    /// Keep the spooled part `n` of `id` (its MD5 `md5`; spooled on the
    /// same file system), replacing one sent before.
    pub fn keep_part(&self, id: &str, n: u32, spooled: &Path, md5: &str) -> S3Result<()> {
        check_part_number(n)?;
        let dir = self.path_of(id)?;
        let part = part_path(&dir, n);
        write_private(&dir.join(format!("part-{n:05}.md5.tmp")), md5.as_bytes())
            .map_err(internal)?;
        std::fs::rename(spooled, &part).map_err(internal)?;
        std::fs::rename(
            dir.join(format!("part-{n:05}.md5.tmp")),
            dir.join(format!("part-{n:05}.md5")),
        )
        .map_err(internal)?;
        Ok(())
    }

    /// The parts of `id` stored so far, in order.
    pub fn parts(&self, id: &str) -> S3Result<Vec<Part>> {
        let dir = self.path_of(id)?;
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|_| no_such_upload())? {
            let entry = entry.map_err(internal)?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("part-"))
                .filter(|n| n.len() == 5)
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let meta = entry.metadata().map_err(internal)?;
            let Ok(md5) = std::fs::read_to_string(dir.join(format!("part-{n:05}.md5"))) else {
                continue;
            };
            parts.push(Part {
                number: n,
                md5,
                size: meta.len(),
                stored: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// The parts `wanted` (number and ETag, as CompleteMultipartUpload
    /// lists them) as one source, and the object's ETag.
    pub fn assemble(&self, id: &str, wanted: &[(u32, String)]) -> S3Result<(PartsSource, String)> {
        if wanted.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "CompleteMultipartUpload lists no parts"
            ));
        }
        if wanted.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(s3_error!(
                InvalidPartOrder,
                "the parts must be listed in ascending order of their numbers"
            ));
        }
        let stored = self.parts(id)?;
        let dir = self.path_of(id)?;
        // Every part there with its ETag, then their sizes.
        let mut found = Vec::new();
        for (n, etag) in wanted {
            let Some(p) = stored.iter().find(|p| p.number == *n) else {
                return Err(s3_error!(InvalidPart, "part {n} was not uploaded"));
            };
            if etag.trim_matches('"') != p.md5 {
                return Err(s3_error!(
                    InvalidPart,
                    "part {n}'s ETag is not the one it was stored with"
                ));
            }
            found.push(p);
        }
        let mut files = Vec::new();
        let mut digests = Vec::new();
        for (i, p) in found.into_iter().enumerate() {
            let n = p.number;
            let path = part_path(&dir, n);
            let meta = std::fs::metadata(&path).map_err(internal)?;
            if i + 1 < wanted.len() && meta.len() < MIN_PART {
                return Err(s3_error!(
                    EntityTooSmall,
                    "part {n} holds {} bytes: every part but the last must hold at least {MIN_PART}",
                    meta.len()
                ));
            }
            files.push(PartFile {
                number: n,
                path,
                file: (meta.dev(), meta.ino()),
                size: meta.len(),
            });
            for pair in p.md5.as_bytes().chunks(2) {
                let s = std::str::from_utf8(pair).unwrap_or("zz");
                digests.push(u8::from_str_radix(s, 16).map_err(internal)?);
            }
        }
        let etag = format!(
            "{}-{}",
            hex(&s3s::crypto::Md5::checksum(&digests)),
            wanted.len()
        );
        Ok((PartsSource::new(files), etag))
    }

    /// Remove the upload `id` and its parts.
    pub fn remove(&self, id: &str) -> S3Result<()> {
        let dir = self.path_of(id)?;
        self.keys.forget(id);
        std::fs::remove_dir_all(dir).map_err(|_| no_such_upload())
    }

    /// The uploads `key_id` started in `bucket`, by ID.
    pub fn list(&self, key_id: &str, bucket: &str) -> Vec<(String, Upload)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Ok(up) = self.open(key_id, &id)
                && up.bucket == bucket
            {
                out.push((id, up));
            }
        }
        out.sort_by(|a, b| (&a.1.key, a.1.created).cmp(&(&b.1.key, b.1.created)));
        out
    }

    /// Remove uploads started longer ago than the expiry; how many.
    pub fn expire(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > self.expiry);
            // The directory's time changes with each part stored: an
            // upload still receiving parts is not removed.
            if old && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// One part of an object being completed: the file it is now.
pub struct PartFile {
    /// Its number.
    pub number: u32,
    /// Where it is.
    pub path: PathBuf,
    /// Its device and inode: a part sent again is another file, renamed
    /// over this one.
    pub file: (u64, u64),
    /// Bytes.
    pub size: u64,
}

/// Parts read in order as one file. Each read opens the parts it needs
/// (an upload may have 10,000 parts: they are not all held open), found
/// by where each starts, and checks that each is still the file it was
/// when the upload was completed: a part sent again meanwhile fails the
/// read rather than mix two versions of it in one object (or, its key
/// hashed as the parts arrived, put the object under another's key).
pub struct PartsSource {
    parts: Vec<PartFile>,
    /// Where each part starts, then the total size.
    starts: Vec<u64>,
}

impl PartsSource {
    fn new(parts: Vec<PartFile>) -> PartsSource {
        let mut starts = Vec::with_capacity(parts.len() + 1);
        let mut at = 0;
        for p in &parts {
            starts.push(at);
            at += p.size;
        }
        starts.push(at);
        PartsSource { parts, starts }
    }
}

impl Source for PartsSource {
    fn size(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    fn read_at(&self, offset: u64, mut buf: &mut [u8]) -> tahoe_core::Result<()> {
        // The part holding `offset`: the last that starts at or before it.
        let mut i = self
            .starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1);
        let mut at = offset;
        while !buf.is_empty() && i < self.parts.len() {
            let (start, end) = (self.starts[i], self.starts[i + 1]);
            let n = buf.len().min((end - at) as usize);
            let (here, rest) = std::mem::take(&mut buf).split_at_mut(n);
            let part = &self.parts[i];
            let file = File::open(&part.path)?;
            let meta = file.metadata()?;
            if (meta.dev(), meta.ino()) != part.file {
                return Err(std::io::Error::other(format!(
                    "part {} was sent again while the upload was being completed",
                    part.number
                ))
                .into());
            }
            file.read_exact_at(here, at - start)?;
            buf = rest;
            at = end;
            i += 1;
        }
        if !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a part is shorter than when it was stored",
            )
            .into());
        }
        Ok(())
    }
}

/// A part number S3 allows, or `InvalidArgument`.
pub fn check_part_number(n: u32) -> S3Result<()> {
    if !(1..=MAX_PARTS).contains(&n) {
        return Err(s3_error!(
            InvalidArgument,
            "part numbers run from 1 to {MAX_PARTS}"
        ));
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "no such upload (it was completed, aborted or expired, or another key started it)"
    )
}

pub(super) fn internal(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InternalError, "{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploads() -> (tempfile::TempDir, Uploads) {
        let dir = tempfile::tempdir().unwrap();
        let u = Uploads::new(dir.path().join("up"), Duration::from_secs(3600)).unwrap();
        (dir, u)
    }

    fn up(key_id: &str) -> Upload {
        Upload {
            version: UPLOAD_FORMAT,
            key_id: key_id.into(),
            bucket: "b".into(),
            key: "k".into(),
            meta: ObjectMeta::default(),
            created: 0,
        }
    }

    fn put(u: &Uploads, id: &str, n: u32, data: &[u8]) -> String {
        let spool = u.dir.join(format!("spool-{id}-{n}"));
        std::fs::write(&spool, data).unwrap();
        let md5 = hex(&s3s::crypto::Md5::checksum(data));
        u.keep_part(id, n, &spool, &md5).unwrap();
        md5
    }

    #[test]
    fn ids_that_are_not_ours_never_reach_the_file_system() {
        let (_d, u) = uploads();
        for bad in [
            "../../etc",
            "",
            "aaaaaaaaaaaaaaaaaaaaaaaaa/",
            "AAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(u.open("k", bad).is_err(), "{bad}");
            assert!(u.remove(bad).is_err(), "{bad}");
        }
        let id = u.create(&up("k")).unwrap();
        assert!(u.open("k", &id).is_ok());
        // Another key cannot use it.
        assert!(u.open("other", &id).is_err());
        assert_eq!(u.list("k", "b").len(), 1);
        assert!(u.list("other", "b").is_empty());
    }

    #[test]
    fn an_upload_of_a_newer_format_is_refused_by_name_and_one_without_is_the_first() {
        let (_d, u) = uploads();
        let id = u.create(&up("k")).unwrap();
        let file = u.dir.join(&id).join("upload.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("version");
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(u.open("k", &id).unwrap().version, 1);
        v["version"] = 2.into();
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let e = u.open("k", &id).unwrap_err().to_string();
        assert!(e.contains("format 2") && e.contains("(1)"), "{e}");
    }

    #[test]
    fn parts_are_checked_and_read_in_order_as_one_source() {
        let (_d, u) = uploads();
        let id = u.create(&up("k")).unwrap();
        let big = vec![7u8; MIN_PART as usize];
        let e1 = put(&u, &id, 1, &big);
        let e2 = put(&u, &id, 2, b"tail");
        // Out of order, a missing part, a wrong ETag.
        let err = |w: &[(u32, String)]| {
            u.assemble(&id, w)
                .err()
                .unwrap()
                .code()
                .as_str()
                .to_string()
        };
        assert_eq!(err(&[(2, e2.clone()), (1, e1.clone())]), "InvalidPartOrder");
        assert_eq!(err(&[(1, e1.clone()), (3, e2.clone())]), "InvalidPart");
        assert_eq!(err(&[(1, e2.clone()), (2, e2.clone())]), "InvalidPart");
        // A small part that is not the last.
        let e3 = put(&u, &id, 3, b"small");
        assert_eq!(err(&[(2, e2.clone()), (3, e3)]), "EntityTooSmall");
        let (src, etag) = u
            .assemble(&id, &[(1, format!("\"{e1}\"")), (2, e2)])
            .unwrap();
        assert_eq!(src.size(), MIN_PART + 4);
        let mut buf = vec![0u8; 6];
        src.read_at(MIN_PART - 2, &mut buf).unwrap();
        assert_eq!(buf, b"\x07\x07tail");
        assert!(etag.ends_with("-2"), "{etag}");
        // Part 2 sent again (the same bytes, another file): the source
        // made before refuses to read it.
        put(&u, &id, 2, b"tail");
        let err = src.read_at(MIN_PART - 2, &mut buf).unwrap_err().to_string();
        assert!(err.contains("part 2 was sent again"), "{err}");
        src.read_at(0, &mut buf[..2]).unwrap();
        u.remove(&id).unwrap();
        assert!(u.open("k", &id).is_err());
    }
}
