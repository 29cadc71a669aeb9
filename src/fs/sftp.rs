//! The SFTP front end: SSH by russh, SFTP by russh-sftp, every file
//! call answered by the [`Fs`] of the account's root.
//!
//! Authentication is by public key only, against the accounts file (see
//! [`super::accounts`]); passwords, keyboard-interactive and "none" are
//! refused. Each session sees its account's directory and nothing above
//! it (`..` stops at its root). A session that ends with files still open
//! drops them: nothing they held is linked, and their spools go.
//!
//! Besides SFTP version 3 the server offers OpenSSH's extensions that
//! sshfs and rclone use: `posix-rename@openssh.com` (rename over an
//! existing file, as rsync's last step does), `statvfs@openssh.com` (`df`)
//! and `fsync@openssh.com` (upload now).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use russh_sftp::protocol::ExtendedReply;
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle as SftpHandle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tahoe_core::format::cap::DirCap;

use super::accounts::Accounts;
use super::error::FsError;
use super::open::{OpenFile, OpenHow};
use super::tree::{Fs, FsConfig, Kind, Stat};
use super::{Frontend, Journal};
use crate::client::GridClient;

/// Entries sent per `readdir` answer.
const BATCH: usize = 256;
/// The most bytes one read answers with (OpenSSH refuses more).
const MAX_READ: u32 = 256 * 1024;

/// What the server needs.
pub struct SftpServer {
    /// The node's grid session.
    pub grid: Arc<GridClient>,
    /// The node's private spool directory.
    pub spool: PathBuf,
    /// Where operations are reported.
    pub journal: Arc<dyn Journal>,
    /// The accounts.
    pub accounts: Arc<Accounts>,
    /// Most connections at once.
    pub max_connections: usize,
    /// A connection not logged in this long after it was accepted is
    /// closed, so that connections that never authenticate cannot hold
    /// every slot of `max_connections`.
    pub auth_timeout: Duration,
    /// The file system of each root with a session open, by root cap:
    /// every session of an account shares one, so a file one connection
    /// wrote is seen at once by the next (rclone and others use several).
    pub trees: std::sync::Mutex<HashMap<String, std::sync::Weak<Fs>>>,
}

/// The SSH key at `path` (OpenSSH format), made when missing: Ed25519,
/// 0600, with its public half beside it in `PATH.pub`. The server's host
/// key, and the demo account's key.
pub fn load_or_make_key(path: &Path) -> Result<PrivateKey> {
    if path.exists() {
        return PrivateKey::read_openssh_file(path)
            .with_context(|| format!("reading the SSH key {}", path.display()));
    }
    let key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519)
        .map_err(|e| anyhow::anyhow!("making an SSH key: {e}"))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding an SSH key: {e}"))?;
    tahoe_core::protocol::identity::write_private(path, text.as_bytes())?;
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    std::fs::write(public, format!("{}\n", public_line(&key)?))?;
    Ok(key)
}

/// The OpenSSH public key line of `key` (`ssh-ed25519 AAAA...`).
pub fn public_line(key: &PrivateKey) -> Result<String> {
    key.public_key()
        .to_openssh()
        .map_err(|e| anyhow::anyhow!("encoding an SSH key: {e}"))
}

impl SftpServer {
    /// Serve on `listener` with `key` until the task is dropped.
    pub fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        key: PrivateKey,
    ) -> tokio::task::JoinHandle<()> {
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            auth_rejection_time: Duration::from_secs(1),
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: 6,
            inactivity_timeout: Some(Duration::from_secs(3600)),
            // Above the channel's window in packets: see russh-sftp's
            // request loop, which reads one request at a time.
            channel_buffer_size: 1024,
            nodelay: true,
            ..Default::default()
        });
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (sock, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("sftp: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if open.load(Ordering::Acquire) >= self.max_connections {
                    tracing::warn!(
                        "sftp: {peer} refused: {} connections open",
                        self.max_connections
                    );
                    continue;
                }
                let _ = sock.set_nodelay(true);
                let authed = Arc::new(AtomicBool::new(false));
                let conn = Connection {
                    server: self.clone(),
                    peer,
                    root: None,
                    channels: HashMap::new(),
                    authed: authed.clone(),
                };
                let deadline = tokio::time::Instant::now() + self.auth_timeout;
                let (config, open) = (config.clone(), open.clone());
                open.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    run_session(config, sock, conn, peer, deadline, authed).await;
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            }
        })
    }
}

impl SftpServer {
    /// The file system of `root`, shared by its sessions.
    fn tree(&self, root: DirCap) -> Arc<Fs> {
        let key = root.to_string();
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        trees.retain(|_, w| w.strong_count() > 0);
        if let Some(fs) = trees.get(&key).and_then(std::sync::Weak::upgrade) {
            return fs;
        }
        let fs = Fs::new(
            self.grid.clone(),
            root,
            self.spool.clone(),
            FsConfig::default(),
            Frontend::Sftp,
            self.journal.clone(),
        );
        trees.insert(key, Arc::downgrade(&fs));
        fs
    }
}

/// Serve one connection, closing it at `deadline` unless it has logged
/// in by then (`authed`): whatever it is doing (silent, halfway through
/// the version or key exchange), its socket is cut.
async fn run_session(
    config: Arc<russh::server::Config>,
    sock: tokio::net::TcpStream,
    conn: Connection,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
    authed: Arc<AtomicBool>,
) {
    let cut = tokio_util::sync::CancellationToken::new();
    let watch = {
        let cut = cut.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if !authed.load(Ordering::Acquire) {
                tracing::debug!("sftp: {peer}: not logged in in time");
                cut.cancel();
            }
        })
    };
    let sock = Cuttable {
        inner: sock,
        cut: Box::pin(cut.cancelled_owned()),
    };
    let r = match russh::server::run_stream(config, sock, conn).await {
        Ok(session) => session.await,
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        tracing::debug!("sftp: {peer}: {e:#}");
    }
    watch.abort();
}

/// A socket that fails every read and write once `cut` fires.
struct Cuttable {
    inner: tokio::net::TcpStream,
    cut: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl Cuttable {
    fn is_cut(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.cut.as_mut().poll(cx).is_ready()
    }
}

fn cut_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "login timed out")
}

impl tokio::io::AsyncRead for Cuttable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.is_cut(cx) {
            return std::task::Poll::Ready(Err(cut_error()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Cuttable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.is_cut(cx) {
            return std::task::Poll::Ready(Err(cut_error()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One SSH connection.
struct Connection {
    server: Arc<SftpServer>,
    peer: SocketAddr,
    /// The account's root, once authenticated.
    root: Option<DirCap>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Set once logged in.
    authed: Arc<AtomicBool>,
}

impl russh::server::Handler for Connection {
    type Error = anyhow::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.account(user, offer.public_key).is_some() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.account(user, key.public_key) {
            Some(account) => {
                // The user name is not a secret; the root is.
                tracing::info!("sftp: {user} logged in from {}", self.peer);
                self.root = Some(account.root.clone());
                self.authed.store(true, Ordering::Release);
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!("sftp: a key refused for {user:?} from {}", self.peer);
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match (name, self.channels.remove(&id), self.root.clone()) {
            ("sftp", Some(channel), Some(root)) => {
                session.channel_success(id)?;
                let fs = self.server.tree(root);
                let handler = SftpSession {
                    fs,
                    handles: HashMap::new(),
                    next: 0,
                };
                russh_sftp::server::run(channel.into_stream(), handler).await;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&id);
        Ok(())
    }
}

impl Connection {
    /// The account of `user` if `key` is one of its keys.
    fn account(
        &self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Option<&super::accounts::Account> {
        let wire = key.to_bytes().ok()?;
        self.server.accounts.login(user, &wire)
    }
}

enum Open {
    File { file: Arc<OpenFile>, append: bool },
    Dir(std::vec::IntoIter<File>),
}

/// One SFTP session over one account's root.
struct SftpSession {
    fs: Arc<Fs>,
    handles: HashMap<String, Open>,
    next: u64,
}

impl Drop for SftpSession {
    fn drop(&mut self) {
        // The client left without closing these: link nothing.
        let files: Vec<Arc<OpenFile>> = self
            .handles
            .drain()
            .filter_map(|(_, h)| match h {
                Open::File { file, .. } => Some(file),
                Open::Dir(_) => None,
            })
            .collect();
        if files.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for f in files {
                    let _ = f.release(false).await;
                }
            });
        }
    }
}

/// An SFTP status for a file-system error, with its message.
fn status(e: FsError) -> StatusReply {
    let code = match &e {
        FsError::NotFound => StatusCode::NoSuchFile,
        FsError::ReadOnly(_) => StatusCode::PermissionDenied,
        FsError::Unsupported(_) => StatusCode::OpUnsupported,
        _ => StatusCode::Failure,
    };
    if let FsError::Grid(g) = &e {
        tracing::warn!("sftp: {g:#}");
    }
    StatusReply::new(code).with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn attrs_of(s: &Stat) -> FileAttributes {
    let mode = match (s.kind, s.writable) {
        (Kind::Dir, true) => 0o040755,
        (Kind::Dir, false) => 0o040555,
        (Kind::File, true) => 0o100644,
        (Kind::File, false) => 0o100444,
    };
    let mtime = s
        .mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0);
    FileAttributes {
        size: Some(s.size),
        uid: Some(0),
        gid: Some(0),
        permissions: Some(mode),
        atime: Some(mtime),
        mtime: Some(mtime),
        ..FileAttributes::default()
    }
}

fn path_of(text: &str) -> Result<Vec<String>, StatusReply> {
    Fs::path(text.as_bytes()).map_err(status)
}

impl SftpSession {
    fn add(&mut self, o: Open) -> String {
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), o);
        h
    }

    fn file(&self, handle: &str) -> Result<(Arc<OpenFile>, bool), StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File { file, append }) => Ok((file.clone(), *append)),
            _ => Err(StatusReply::new(StatusCode::Failure).with_message("no such open file")),
        }
    }
}

/// Apply the size and time of `attrs` to `path` (or its open file).
async fn set_attrs(
    fs: &Arc<Fs>,
    path: &[String],
    open: Option<&OpenFile>,
    attrs: &FileAttributes,
) -> Result<(), StatusReply> {
    let mtime = attrs
        .mtime
        .map(|t| UNIX_EPOCH + Duration::from_secs(u64::from(t)));
    fs.set_attrs(path, open, attrs.size, mtime)
        .await
        .map_err(status)
}

/// Two SSH strings (`posix-rename@openssh.com`'s arguments).
fn two_strings(data: &[u8]) -> Option<(String, String)> {
    let one = |d: &[u8]| -> Option<(String, usize)> {
        let len = u32::from_be_bytes(d.get(..4)?.try_into().ok()?) as usize;
        let s = d.get(4..4 + len)?;
        Some((String::from_utf8(s.to_vec()).ok()?, 4 + len))
    };
    let (a, used) = one(data)?;
    let (b, _) = one(&data[used..])?;
    Some((a, b))
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusReply::new(StatusCode::OpUnsupported).with_message("not supported")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        for (name, version) in [
            ("posix-rename@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("fsync@openssh.com", "1"),
        ] {
            v.extensions.insert(name.into(), version.into());
        }
        Ok(v)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let p = path_of(&path)?;
        Ok(Name {
            id,
            files: vec![File::dummy(format!("/{}", p.join("/")))],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let p = path_of(&path)?;
        let s = self.fs.stat(&p).await.map_err(status)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&s),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let (f, _) = self.file(&handle)?;
        let s = self
            .fs
            .stat_through(&f.path(), Some(&f))
            .await
            .map_err(status)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&s),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let p = path_of(&path)?;
        set_attrs(&self.fs, &p, None, &attrs).await?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let (f, _) = self.file(&handle)?;
        set_attrs(&self.fs, &f.path(), Some(&f), &attrs).await?;
        Ok(ok(id))
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<SftpHandle, Self::Error> {
        let p = path_of(&filename)?;
        let write = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        let how = OpenHow {
            write,
            create: pflags.contains(OpenFlags::CREATE),
            exclusive: pflags.contains(OpenFlags::EXCLUDE),
            truncate: pflags.contains(OpenFlags::TRUNCATE),
        };
        let file = self.fs.open(&p, how).await.map_err(status)?;
        let append = pflags.contains(OpenFlags::APPEND);
        Ok(SftpHandle {
            id,
            handle: self.add(Open::File { file, append }),
        })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let (f, _) = self.file(&handle)?;
        let data = f.read(offset, len.min(MAX_READ)).await.map_err(status)?;
        if data.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let (f, append) = self.file(&handle)?;
        let at = if append { f.size() } else { offset };
        f.write(at, &data).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            // The upload's outcome is the close's: a failed upload is
            // never reported as written.
            Some(Open::File { file, .. }) => file.release(true).await.map_err(status)?,
            Some(Open::Dir(_)) => {}
            None => {
                return Err(StatusReply::new(StatusCode::Failure).with_message("no such handle"));
            }
        }
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<SftpHandle, Self::Error> {
        let p = path_of(&path)?;
        let entries = self.fs.list(&p).await.map_err(status)?;
        let files: Vec<File> = entries
            .iter()
            .map(|(name, s)| File::new(name.clone(), attrs_of(s)))
            .collect();
        Ok(SftpHandle {
            id,
            handle: self.add(Open::Dir(files.into_iter())),
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(Open::Dir(rest)) => {
                let files: Vec<File> = rest.by_ref().take(BATCH).collect();
                if files.is_empty() {
                    return Err(StatusReply::new(StatusCode::Eof));
                }
                Ok(Name { id, files })
            }
            _ => {
                Err(StatusReply::new(StatusCode::Failure).with_message("no such directory handle"))
            }
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let p = path_of(&filename)?;
        self.fs.remove(&p, Kind::File).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let p = path_of(&path)?;
        self.fs.mkdir(&p).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let p = path_of(&path)?;
        self.fs.remove(&p, Kind::Dir).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        // SFTP v3's rename does not replace (as OpenSSH's server); the
        // posix-rename extension does.
        let (from, to) = (path_of(&oldpath)?, path_of(&newpath)?);
        self.fs.rename(&from, &to, true).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, Self::Error> {
        Err(StatusReply::new(StatusCode::OpUnsupported)
            .with_message("symbolic links are not supported: the grid has no links"))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(StatusReply::new(StatusCode::OpUnsupported)
            .with_message("symbolic links are not supported: the grid has no links"))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, Self::Error> {
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let (a, b) = two_strings(&data).ok_or_else(|| {
                    StatusReply::new(StatusCode::BadMessage).with_message("malformed rename")
                })?;
                let (from, to) = (path_of(&a)?, path_of(&b)?);
                self.fs.rename(&from, &to, false).await.map_err(status)?;
                Ok(Packet::Status(ok(id)))
            }
            "statvfs@openssh.com" => {
                const BLOCK: u64 = 4096;
                let blocks = self.fs.space().free / BLOCK;
                let ro = u64::from(self.fs.read_only());
                let mut out = Vec::with_capacity(88);
                for v in [BLOCK, BLOCK, blocks, blocks, blocks, 0, 0, 0, 0, ro, 255] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                Ok(Packet::ExtendedReply(ExtendedReply { id, data: out }))
            }
            "fsync@openssh.com" => {
                let handle = data
                    .get(4..)
                    .and_then(|h| String::from_utf8(h.to_vec()).ok())
                    .unwrap_or_default();
                let (f, _) = self.file(&handle)?;
                f.flush().await.map_err(status)?;
                Ok(Packet::Status(ok(id)))
            }
            _ => Err(self.unimplemented()),
        }
    }
}
