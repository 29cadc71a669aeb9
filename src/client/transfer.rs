//! `tahoe put` and `tahoe get`, with a progress bar on a terminal.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};

use super::session::GridClient;
use anyhow::{Context, Result, bail};
use tahoe_core::client::source::{FileSource, Source, spool};
use tahoe_core::format::cap::{Cap, SskWriteCap};
use tahoe_core::format::ssk::MutableFormat;
use tokio::io::AsyncWrite;

/// Counts the bytes read from a source.
struct Counted {
    inner: Box<dyn Source>,
    read: Arc<AtomicU64>,
}

impl Source for Counted {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> tahoe_core::Result<()> {
        self.inner.read_at(offset, buf)?;
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// What `tahoe put` makes.
#[derive(Debug, Clone)]
pub enum PutKind {
    /// An immutable file (CHK, or LIT when small).
    Immutable,
    /// A new mutable file.
    Mutable(MutableFormat),
    /// New contents for an existing mutable file.
    Overwrite(SskWriteCap),
}

impl PutKind {
    /// From `--mutable` and `--format`.
    pub fn from_args(mutable: bool, format: Option<&str>) -> Result<Self> {
        match format.map(str::to_ascii_lowercase).as_deref() {
            None if mutable => Ok(PutKind::Mutable(MutableFormat::Sdmf)),
            None => Ok(PutKind::Immutable),
            Some("chk") if mutable => bail!("--format chk makes an immutable file; drop --mutable"),
            Some("chk") => Ok(PutKind::Immutable),
            Some(f) => Ok(PutKind::Mutable(MutableFormat::parse(f)?)),
        }
    }

    /// Overwriting the mutable file `cap` (a target given as a cap); a
    /// `--format` given must be the file's.
    pub fn overwriting(cap: Cap, format: Option<&str>) -> Result<Self> {
        match cap {
            Cap::SskWrite(w) => {
                if let Some(f) = format.filter(|f| !f.eq_ignore_ascii_case(w.format.name())) {
                    bail!(
                        "--format {f} was given, but the target is an {} file",
                        w.format.name().to_uppercase()
                    );
                }
                Ok(PutKind::Overwrite(w))
            }
            other => bail!(
                "the target must be a mutable file's write cap (URI:SSK: or URI:MDMF:) or a \
                 path; this is {} cap",
                other.a_kind()
            ),
        }
    }
}

/// `tahoe put`: the new cap, or `None` after an overwrite.
pub async fn put(session: &GridClient, file: &Path, how: PutKind) -> Result<Option<Cap>> {
    let inner: Box<dyn Source> = if file.as_os_str() == "-" {
        let dir = session.basedir().to_path_buf();
        Box::new(
            tokio::task::spawn_blocking(move || spool(std::io::stdin().lock(), &dir))
                .await
                .context("spooling standard input")??,
        )
    } else {
        Box::new(FileSource::open(file)?)
    };
    let read = Arc::new(AtomicU64::new(0));
    // A convergent upload reads the data twice; a mutable one once (twice
    // for a large overwrite, whose second phase re-reads: the bar then
    // stops at 100% early).
    let total = match how {
        PutKind::Immutable => inner.size() * 2,
        _ => inner.size(),
    };
    let source = Arc::new(Counted {
        inner,
        read: read.clone(),
    });
    let _progress = super::progress::Transfer::start("uploading", read, total);
    match how {
        PutKind::Immutable => Ok(Some(session.put(source).await?)),
        PutKind::Mutable(format) => Ok(Some(Cap::SskWrite(
            session.put_mutable(format, source).await?,
        ))),
        PutKind::Overwrite(cap) => {
            session.overwrite(&cap, source).await?;
            Ok(None)
        }
    }
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    written: Arc<AtomicU64>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where `tahoe get CAP OUT` writes until the whole file has verified: a
/// hidden file next to OUT, renamed over it at the end, so OUT is never a
/// partial or unverified file (and an existing OUT survives a failed get).
/// An OUT that exists and is not a regular file (`/dev/null`, a pipe) is
/// written directly instead.
fn partial_path(out: &Path) -> std::path::PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// `tahoe get`.
pub async fn get(session: &GridClient, cap: &Cap, out: Option<&Path>) -> Result<()> {
    get_as(session, cap, out, false).await
}

/// [`get`] into a spool file of the node's that keeps mode 0600.
pub async fn get_private(session: &GridClient, cap: &Cap, out: &Path) -> Result<()> {
    get_as(session, cap, Some(out), true).await
}

/// The mode a new file gets from this process's umask.
fn default_mode() -> u32 {
    let umask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|u| u32::from_str_radix(u.trim(), 8).ok())
        })
        .unwrap_or(0o022);
    0o666 & !umask
}

/// The plaintext is written to a new file readable by its owner only
/// until it has verified; then it takes OUT's mode (a new OUT's from the
/// umask), unless `private`.
async fn get_as(session: &GridClient, cap: &Cap, out: Option<&Path>, private: bool) -> Result<()> {
    let out = out.filter(|p| p.as_os_str() != "-");
    let Some(path) = out else {
        return download(session, cap, Box::new(tokio::io::stdout())).await;
    };
    // Devices, pipes and the like are written as they are: only a regular
    // file (or a new one) can be replaced by renaming.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        return download(session, cap, Box::new(file)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(path) {
        _ if private => 0o600,
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => default_mode(),
    };
    let tmp = partial_path(path);
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .await
        .with_context(|| format!("creating {}", tmp.display()))?;
    let result = async {
        download(session, cap, Box::new(file)).await?;
        // Durable before it takes OUT's name.
        std::fs::File::open(&tmp)
            .and_then(|f| {
                f.sync_all()?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))
            })
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Log the shares a download found corrupt (their servers were told).
fn warn_corrupt(bad: &[tahoe_core::client::servers::BadShare]) {
    for b in bad.iter().filter(|b| b.corrupt) {
        tracing::warn!(
            "share {} on server {} is corrupt: {}",
            b.shnum,
            b.server,
            b.reason
        );
    }
}

async fn download(
    session: &GridClient,
    cap: &Cap,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let written = Arc::new(AtomicU64::new(0));
    let mut writer = CountingWriter {
        inner: writer,
        written: written.clone(),
    };
    match cap {
        Cap::Lit(l) => writer.write_all(&l.data).await?,
        Cap::Chk(c) => {
            let _progress = super::progress::Transfer::start("downloading", written, c.size);
            let report = session.get(c, 0..u64::MAX, &mut writer).await?;
            warn_corrupt(&report.bad_shares);
        }
        Cap::SskWrite(_) | Cap::SskRead(_) => {
            let Some(read) = cap.mutable_read_cap() else {
                bail!("not a mutable read cap");
            };
            let report = session.get_mutable(&read, 0..u64::MAX, &mut writer).await?;
            warn_corrupt(&report.bad_shares);
        }
        Cap::ChkVerifier(_) | Cap::SskVerifier(_) => {
            bail!("a verify cap cannot be downloaded (it cannot decrypt)")
        }
        Cap::Dir(_) => {
            bail!("this is a directory: list it with tahoe ls, copy it with tahoe cp -r")
        }
    }
    writer.flush().await?;
    Ok(())
}
