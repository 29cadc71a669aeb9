//! `tahoe mount` runs through the running node: the command asks the node
//! over a Unix socket in its private directory (`private/mount.sock`,
//! 0600 in a 0700 directory, so only the node's owner can ask), the node
//! mounts with its own grid session, and the mount's operations appear on
//! the node's operations page and in its statistics beside the gateway's
//! and SFTP's.
//!
//! The protocol is JSON lines. The command sends one [`MountRequest`];
//! the node answers `{"mounted":true}` or `{"error":"..."}`. The mount then
//! lasts as long as the connection: when the command closes it (Ctrl-C,
//! SIGTERM, or the command killed) the node unmounts; when the mount ends
//! on its own (`fusermount -u`), the node sends `{"ended":"..."}` and
//! closes. Either way the node's open files are flushed as their handles
//! close: a file being written when the mount ends is uploaded by its
//! close or not linked at all, never half-linked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use super::tree::{Fs, FsConfig};
use super::{Frontend, Journal};
use crate::client::GridClient;

/// The socket, under the node's base directory.
pub const SOCKET: &str = "private/mount.sock";

/// The longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a connection has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What `tahoe mount` asks for.
#[derive(Debug, Serialize, Deserialize)]
pub struct MountRequest {
    /// The cap the path starts from.
    pub root: String,
    /// Names below it.
    pub path: Vec<String>,
    /// Where to mount: an absolute path to a directory.
    pub mountpoint: PathBuf,
    /// Refuse every change.
    pub read_only: bool,
    /// How long listings and attributes are trusted, in milliseconds.
    pub cache_ttl_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    mounted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<String>,
}

/// What the node mounts with.
pub struct Mounter {
    /// The node's grid session.
    pub grid: Arc<GridClient>,
    /// The node's private spool directory.
    pub spool: PathBuf,
    /// Where operations are reported.
    pub journal: Arc<dyn Journal>,
}

/// Serve mount requests on `BASEDIR/private/mount.sock` until dropped.
pub async fn serve(basedir: &Path, mounter: Arc<Mounter>) -> Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = basedir.join(SOCKET);
    // A socket a crash left behind.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("listening on {} for tahoe mount", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    tokio::spawn(serve_one(conn, mounter.clone()));
                }
                Err(e) => {
                    tracing::warn!("mount socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn serve_one(conn: tokio::net::UnixStream, m: Arc<Mounter>) {
    let (r, mut w) = conn.into_split();
    let mut lines = BufReader::new(r.take(MAX_REQUEST)).lines();
    let session = match tokio::time::timeout(REQUEST_TIMEOUT, lines.next_line()).await {
        Ok(Ok(Some(line))) => m.mount(&line).await,
        _ => return,
    };
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            send(
                &mut w,
                Answer {
                    error: Some(format!("{e:#}")),
                    ..Answer::default()
                },
            )
            .await;
            return;
        }
    };
    send(
        &mut w,
        Answer {
            mounted: Some(true),
            ..Answer::default()
        },
    )
    .await;
    let why = loop {
        tokio::select! {
            // Anything from the command, or its end: unmount.
            _ = lines.next_line() => break None,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if session.guard.is_finished() {
                    break Some("unmounted".to_string());
                }
            }
        }
    };
    let unmounted = tokio::task::spawn_blocking(move || session.umount_and_join()).await;
    let ended = match (why, unmounted) {
        (Some(w), _) => w,
        (None, Ok(Ok(()))) => "unmounted".into(),
        (None, Ok(Err(e))) => format!("unmounting failed: {e}"),
        (None, Err(e)) => format!("unmounting failed: {e}"),
    };
    send(
        &mut w,
        Answer {
            ended: Some(ended),
            ..Answer::default()
        },
    )
    .await;
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, a: Answer) {
    let mut line = serde_json::to_vec(&a).unwrap_or_default();
    line.push(b'\n');
    let _ = w.write_all(&line).await;
}

impl Mounter {
    async fn mount(&self, line: &str) -> Result<fuser::BackgroundSession> {
        let req: MountRequest = serde_json::from_str(line).context("a malformed mount request")?;
        let root = crate::client::files::parse_dir_cap(&req.root)
            .map_err(|_| anyhow::anyhow!("the mount's root is not a directory cap"))?;
        let dirs = self
            .grid
            .dir_client(tahoe_core::client::mutable::key_pool::KeyPool::new(0))
            .await?;
        let dir = dirs.resolve_dir(&root, &req.path).await?;
        // A root that cannot be read fails the mount, not its first call.
        dirs.read(&dir)
            .await
            .context("the directory to mount cannot be read")?;
        if !req.mountpoint.is_absolute() {
            bail!("the mount point must be an absolute path");
        }
        let mut config = FsConfig {
            read_only: req.read_only,
            ..FsConfig::default()
        };
        if let Some(ms) = req.cache_ttl_ms {
            config.cache_ttl = Duration::from_millis(ms);
        }
        let fs = Fs::new(
            self.grid.clone(),
            dir,
            self.spool.clone(),
            config,
            Frontend::Fuse,
            self.journal.clone(),
        );
        let rt = tokio::runtime::Handle::current();
        let mountpoint = req.mountpoint.clone();
        tokio::task::spawn_blocking(move || super::fuse::mount(fs, rt, &mountpoint))
            .await?
            .with_context(|| format!("mounting at {}", req.mountpoint.display()))
    }
}

/// `tahoe mount`: ask the node in `basedir` to mount `request`, and hold
/// the mount until Ctrl-C, SIGTERM, or an unmount from outside.
pub async fn mount_through_node(
    basedir: &Path,
    request: MountRequest,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let sock = basedir.join(SOCKET);
    let conn = tokio::net::UnixStream::connect(&sock).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the node in {} ({e}): is it running? Start it with \
             `tahoe run -d {}`",
            basedir.display(),
            basedir.display()
        )
    })?;
    let shown = request.mountpoint.display().to_string();
    let (r, mut w) = conn.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let first = next_answer(&mut lines).await?;
    if let Some(e) = first.error {
        bail!("{e}");
    }
    writeln!(
        out,
        "mounted at {shown}; Ctrl-C or `fusermount -u {shown}` unmounts"
    )?;
    out.flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        a = next_answer(&mut lines) => {
            let a = a?;
            writeln!(out, "{}", a.ended.unwrap_or_else(|| "unmounted".into()))?;
            return Ok(());
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // Ask for the unmount and wait for it (open files flush first).
    let _ = w.write_all(b"unmount\n").await;
    match tokio::time::timeout(Duration::from_secs(60), next_answer(&mut lines)).await {
        Ok(Ok(a)) => writeln!(out, "{}", a.ended.unwrap_or_else(|| "unmounted".into()))?,
        Ok(Err(e)) => bail!("{e:#}"),
        Err(_) => bail!("the node did not unmount {shown} within a minute"),
    }
    Ok(())
}

async fn next_answer(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Result<Answer> {
    match lines.next_line().await? {
        Some(l) => serde_json::from_str(&l).context("a malformed answer from the node"),
        None => bail!("the node closed the mount's connection"),
    }
}
