//! An immutable share being written: its space reservation, its file in
//! `incoming/`, and sealing it under its final name.

use std::fs::{self, File};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::blocking::{in_place, on_pool};
use tahoe_core::kinds::storage::{
    PendingShare, ShareKind, ShareNum, StorageIndex, check_pending_write,
};
use tahoe_core::{Error, Result};

use crate::FsBackend;
use crate::files::{create_dirs, io_err, sync_dir};

/// Bytes promised to one pending share, given back when it is dropped
/// (sealed, aborted or abandoned alike).
pub(crate) struct Reservation {
    pub(crate) backend: FsBackend,
    pub(crate) size: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut promised) = self.backend.promised() {
            *promised = promised.saturating_sub(self.size);
        }
    }
}

pub(crate) struct Pending {
    pub(crate) backend: FsBackend,
    pub(crate) si: StorageIndex,
    pub(crate) shnum: ShareNum,
    pub(crate) size: u64,
    pub(crate) tmp: PathBuf,
    pub(crate) file: Option<Arc<File>>,
    pub(crate) _reservation: Reservation,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[async_trait]
impl PendingShare for Pending {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        check_pending_write(self.size, offset, data.len())?;
        let file = self
            .file
            .clone()
            .ok_or_else(|| Error::internal("write after seal"))?;
        let tmp = self.tmp.clone();
        in_place(move || {
            file.write_all_at(&data, offset)
                .map_err(|e| io_err("write", &tmp, e))
        })
        .await
    }

    async fn seal(mut self: Box<Self>) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::internal("sealed twice"))?;
        let backend = self.backend.clone();
        let (si, shnum, size, tmp) = (self.si, self.shnum, self.size, self.tmp.clone());
        let _guard = backend.stripe(&si, Some(shnum)).lock().await;
        let b = backend.clone();
        on_pool(move || {
            let result = (|| {
                file.set_len(size)
                    .map_err(|e| io_err("set length of", &tmp, e))?;
                file.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
                drop(file);
                if b.share_path(&si, shnum, ShareKind::Mutable).exists() {
                    return Err(Error::already_exists(format!(
                        "share {shnum} of {si} is a mutable share"
                    )));
                }
                let dir = b.si_dir(&si);
                create_dirs(&dir)?;
                let dest = b.share_path(&si, shnum, ShareKind::Immutable);
                // link(2) refuses an existing name: the first seal wins.
                match fs::hard_link(&tmp, &dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == IoKind::AlreadyExists => {
                        return Err(Error::already_exists(format!(
                            "share {shnum} of {si} was sealed by another writer"
                        )));
                    }
                    Err(e) => return Err(io_err("link", &dest, e)),
                }
                sync_dir(&dir)
            })();
            let _ = fs::remove_file(&tmp);
            result
        })
        .await
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        if self.file.take().is_some() {
            let tmp = self.tmp.clone();
            on_pool(move || match fs::remove_file(&tmp) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == IoKind::NotFound => Ok(()),
                Err(e) => Err(io_err("remove", &tmp, e)),
            })
            .await?;
        }
        Ok(())
    }
}
