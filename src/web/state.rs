//! The gateway's state: the node's client API, its key pool and spool, and the operations and statistics its pages show.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::body::Body;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::client::source::FileSource;
use tahoe_core::format::cap::{Cap, SskWriteCap};
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::server::StorageServer;

use super::form::{self, Spooled};
use super::ops::{OpKind, Ops, Tracked};
use super::stats::Stats;
use crate::client::GridClient;

/// Who the node is, for the welcome page.
pub struct NodeInfo {
    /// The node's nickname.
    pub nickname: String,
    /// The node's id (base32 of its key's hash).
    pub node_id: String,
    /// A server not heard from for this long is shown as stale.
    pub stale_after: std::time::Duration,
}

/// The gateway's state.
pub struct Gateway {
    pub(super) session: Arc<GridClient>,
    pub(super) keys: KeyPool,
    pub(super) spool: PathBuf,
    pub(super) info: NodeInfo,
    pub(super) started: Instant,
    pub(super) ops: Arc<Ops>,
    /// Operations started by handle (`ophandle=`).
    pub(super) handles: super::handles::Handles,
    pub(super) stats: Arc<Stats>,
    /// The node's own storage server, for its counters.
    pub(super) storage: Option<StorageServer>,
    /// The node's web token (see [`token`]).
    pub(super) token: String,
    /// The names it answers to besides addresses and localhost.
    pub(super) allowed_hosts: Vec<String>,
    /// Longest wait for the next piece of a request body.
    pub(super) body_timeout: Duration,
}

impl Gateway {
    pub(super) async fn dirs(&self) -> Result<DirClient> {
        self.session.dir_client(self.keys.clone()).await
    }

    pub(super) fn begin(&self, kind: OpKind, name: &str, size: Option<u64>) -> Tracked {
        let t = self.ops.begin(kind, name, size);
        t.0.set_servers(self.session.known().len());
        t
    }

    /// Spool a request body; for an `immutable` upload, hash its
    /// convergent key on the way, so the upload reads the spooled file
    /// once instead of twice. A body whose length is not known in advance
    /// (chunked) gets the key of any size whose segments are the largest
    /// (see `Uploader::open_key_hasher`); a smaller one is hashed again by
    /// the upload.
    pub(super) async fn spool_body(
        &self,
        body: Body,
        op: &Tracked,
        immutable: bool,
    ) -> Result<Spooled> {
        use axum::body::HttpBody as _;
        let key = match body.size_hint().exact() {
            Some(len) if immutable => self.session.key_hasher(len)?,
            None if immutable => self.session.open_key_hasher()?,
            _ => None,
        };
        let stream = form::Guarded::new(body, self.body_timeout);
        form::spool(&self.spool, stream, |c| op.0.add(c.len() as u64), key).await
    }

    /// Upload a spooled file as `format` (immutable when `None`); its cap.
    pub(super) async fn store(
        &self,
        data: &Spooled,
        format: Option<MutableFormat>,
        op: &Tracked,
    ) -> Result<Cap> {
        op.0.set_size(data.len);
        let r = async {
            let source = Arc::new(FileSource::open(&data.path)?);
            Ok(match format {
                None => self.session.put_with(source, data.key).await?,
                Some(f) => {
                    let client = self.session.mutable_client(self.keys.clone()).await?;
                    Cap::SskWrite(client.create(f, source).await?)
                }
            })
        }
        .await;
        self.ended(&r, data.len, op);
        r
    }

    /// Replace a mutable file's contents with a spooled file.
    pub(super) async fn overwrite(
        &self,
        cap: &SskWriteCap,
        data: &Spooled,
        op: &Tracked,
    ) -> Result<()> {
        op.0.set_size(data.len);
        let r = async {
            let source = Arc::new(FileSource::open(&data.path)?);
            self.session.overwrite(cap, source).await
        }
        .await;
        self.ended(&r, data.len, op);
        r
    }

    pub(super) fn ended<T>(&self, r: &Result<T>, len: u64, op: &Tracked) {
        match r {
            Ok(_) => {
                op.done();
                self.stats.uploaded(len);
            }
            Err(e) => op.failed(e),
        }
    }
}
