//! `fs`: shares as files in a local directory.
//!
//! Layout under the configured root (default `BASEDIR/storage`):
//!
//! ```text
//! shares/<2-char prefix>/<storage index>/<shnum>          sealed immutable share
//! shares/<2-char prefix>/<storage index>/<shnum>.mutable  mutable share
//! shares/<2-char prefix>/<storage index>/<shnum>.mutable.journal
//!                                                 an update being applied
//! shares/<2-char prefix>/<storage index>/leases           lease records
//! incoming/<unique name>                                  data not yet sealed
//! ```
//!
//! Storage indexes are written in base32 and the prefix is its first two
//! characters (Tahoe's fan-out, 1024 directories). Every path component
//! comes from a typed [`StorageIndex`](tahoe_core::kinds::storage::StorageIndex) or share number or from this code,
//! never from a string a peer sent, so no input can walk out of the root.
//!
//! Crash safety comes from never changing a visible file in place:
//! - an immutable share is written to `incoming/`, fsynced, then hard-linked
//!   to its final name (which fails if the name exists, so the first seal
//!   wins) and the directory fsynced;
//! - the lease file, and a mutable share of up to [`REWRITE_LIMIT`] bytes,
//!   is rewritten whole into `incoming/`, fsynced and renamed over the old
//!   one;
//! - a larger mutable share is changed in place behind a redo journal: the
//!   writes go first to `<shnum>.mutable.journal` (written to `incoming/`,
//!   fsynced, renamed into place), then into the share, which is fsynced
//!   before the journal is removed. A journal left by a crash is applied
//!   again (writes are idempotent) before the share is next read or
//!   written. So a large share written piece by piece (an MDMF publish)
//!   costs each call its own bytes, not the whole share's.
//!
//! A crash leaves at most files in `incoming/`, which are never listed and
//! are removed when the backend is next opened. One process uses a root at a
//! time (the node's pid file sees to that). Mutable shares are held in
//! memory while rewritten, so they are limited to
//! [`tahoe_core::kinds::storage::MAX_MUTABLE_SHARE`].
//!
//! All file I/O runs on tokio's blocking pool.

mod files;
mod journal;
mod leases;
mod pending;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use tahoe_core::Result;
use tahoe_core::kinds::storage::StorageBackend;
use tahoe_core::plugin::registry::{PluginContext, Registry};

pub use store::FsBackend;

/// The registry name.
pub const NAME: &str = "fs";

/// Mutable shares up to this size are rewritten whole on every change
/// (two fsyncs); larger ones are changed in place behind a journal.
pub const REWRITE_LIMIT: u64 = 1 << 20;

/// `[storage.fs]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FsConfig {
    /// The root directory; relative paths are under the node's base directory.
    pub path: PathBuf,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            path: PathBuf::from("storage"),
        }
    }
}

/// Register `fs` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_storage(
        NAME,
        "shares as files under a directory; crash-safe (write, fsync, link/rename)",
        |ctx: &PluginContext| {
            let cfg: FsConfig = ctx.config.parse()?;
            let root = ctx.basedir.join(&cfg.path);
            Ok(Arc::new(FsBackend::open(root)?) as Arc<dyn StorageBackend>)
        },
    )
}
