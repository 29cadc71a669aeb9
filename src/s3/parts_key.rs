//! The convergent key of a multipart upload, hashed as its parts arrive
//! instead of over the whole object once it is complete.
//!
//! An object's convergent key is a hash of all its bytes, and nothing can
//! be encrypted before it is known, so completing an upload used to begin
//! with a pass over every part. Now each upload has a fold: when a part is
//! stored, the parts that follow those already hashed (1, 2, ... in order,
//! as far as they are there) are hashed on the blocking pool, beside the
//! parts still arriving. Completing then uses the key when the parts it
//! lists are exactly the parts hashed, each still the very file hashed
//! (its inode: a part sent again is a new file, renamed over the old; the
//! completion's reads check the same inodes,
//! [`PartsSource`](super::multipart::PartsSource));
//! any other list (a part left out, one sent again after it was hashed,
//! parts beyond those listed) gets the key hashed over the object as
//! before. The folds live in memory only (a restarted node hashes at
//! completion) and at most [`MAX_FOLDS`] at once.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tahoe_core::client::immutable::upload::{KeyHasher, PrecomputedKey};

use super::multipart::PartFile;

/// The most uploads folded at once; later ones hash at completion.
pub const MAX_FOLDS: usize = 256;

/// How much of a part is read at once.
const CHUNK: usize = 1 << 20;

/// A part hashed: its number and the file it was.
struct Hashed {
    number: u32,
    /// Device and inode of the file hashed.
    file: (u64, u64),
    size: u64,
}

/// One upload's fold.
struct Fold {
    /// `None` once it cannot give the key (a part could not be read).
    hasher: Option<KeyHasher>,
    /// Parts 1, 2, ... hashed, in order.
    hashed: Vec<Hashed>,
}

/// Every upload's fold (see the module docs).
#[derive(Default)]
pub struct PartsKeys {
    folds: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Fold>>>>,
}

/// The file of part `n` of the upload whose parts are in `dir`.
pub fn part_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("part-{n:05}"))
}

impl PartsKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Fold>>>> {
        self.folds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start folding the upload `id` with `hasher`; `live` tells whether
    /// an upload (by ID) still exists, so that folds of uploads removed
    /// meanwhile (expired) are dropped first.
    pub fn start(&self, id: &str, hasher: KeyHasher, live: impl Fn(&str) -> bool) {
        let mut folds = self.lock();
        if folds.len() >= MAX_FOLDS {
            folds.retain(|id, _| live(id));
        }
        if folds.len() < MAX_FOLDS {
            let fold = Fold {
                hasher: Some(hasher),
                hashed: Vec::new(),
            };
            folds.insert(id.to_string(), Arc::new(tokio::sync::Mutex::new(fold)));
        }
    }

    /// Drop the fold of `id`.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Hash the parts of `id` (kept in `dir`) that follow those hashed,
    /// as far as they are there.
    pub async fn advance(&self, id: &str, dir: PathBuf) {
        let Some(fold) = self.lock().get(id).cloned() else {
            return;
        };
        let mut fold = fold.lock_owned().await;
        let _ = tokio::task::spawn_blocking(move || {
            while fold.hasher.is_some() {
                let n = fold.hashed.len() as u32 + 1;
                let Ok(file) = std::fs::File::open(part_path(&dir, n)) else {
                    break;
                };
                match hash_part(file, fold.hasher.as_mut().expect("checked")) {
                    Ok(((dev, ino), size)) => fold.hashed.push(Hashed {
                        number: n,
                        file: (dev, ino),
                        size,
                    }),
                    Err(e) => {
                        tracing::debug!("multipart upload: part {n} not hashed ahead: {e}");
                        fold.hasher = None;
                    }
                }
            }
        })
        .await;
    }

    /// The key of the object made of `parts` (as completing reads them,
    /// in order), when they are exactly the parts hashed, the same files;
    /// the fold is used up either way.
    pub async fn key(&self, id: &str, parts: &[PartFile]) -> Option<PrecomputedKey> {
        let fold = self.lock().remove(id)?;
        let mut fold = fold.lock().await;
        let same = parts.len() == fold.hashed.len()
            && parts
                .iter()
                .zip(&fold.hashed)
                .all(|(p, h)| p.number == h.number && p.file == h.file && p.size == h.size);
        if !same {
            return None;
        }
        fold.hasher.take()?.finish()
    }
}

/// Feed `file` whole to `hasher`: its device and inode, and its size.
fn hash_part(
    mut file: std::fs::File,
    hasher: &mut KeyHasher,
) -> std::io::Result<((u64, u64), u64)> {
    let meta = file.metadata()?;
    let mut buf = vec![0u8; CHUNK];
    let mut read = 0u64;
    loop {
        let got = file.read(&mut buf)?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        read += got as u64;
    }
    if read != meta.len() {
        return Err(std::io::Error::other("the part changed as it was read"));
    }
    Ok(((meta.dev(), meta.ino()), read))
}
