//! A node's base directory: the name of every file in it, and the helpers
//! that read and write them. One place lists the layout, so that every
//! part of the node (the client API, the gateway, the roles, the command
//! line) names the same files the same way.
//!
//! ```text
//! BASEDIR/
//!   tahoe.toml                 configuration (tahoe_core::plugin::config)
//!   introducer.url             the queen's address and grid secret (0600)
//!   vdrive.cap                 the shared drive's write cap (0600)
//!   servers.json               storage servers known, kept across restarts
//!   webport                    the gateway's port, as the seed wrote it
//!   node.pid, node.lock        the running node
//!   status.json                what the running node reports
//!   logs/                      the node's log
//!   tmp/                       upload spool (0700)
//!   private/                   keys and secrets (0700; files 0600): node.key,
//!                              tls.crt, secret, convergence, introducer.url,
//!                              grid.secret, vdrive.pem, aliases, web.token
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::plugin::config::NodeConfig;
use tahoe_core::protocol::QueenAddress;

pub use tahoe_core::client::secrets::SECRET_FILE;
pub use tahoe_core::plugin::config::CONFIG_FILE;
pub use tahoe_core::protocol::identity::KEY_FILE;

/// The upload spool (0700), cleared of leftovers when the gateway starts.
pub const SPOOL_DIR: &str = "tmp";

/// The queen's address with the grid secret, written by `create-queen`
/// (mode 0600) for clients to copy.
pub const INTRODUCER_FILE: &str = "introducer.url";

/// Where a client keeps the queen's address it was created with (0600).
pub const CLIENT_INTRODUCER_FILE: &str = "private/introducer.url";

/// The queen's grid secret (base32).
pub const GRID_SECRET_FILE: &str = "private/grid.secret";

/// Held locked (`flock`) by the running node: one node per base directory.
const LOCK_FILE: &str = "node.lock";

/// The shared root directory's write cap: written by `create-queen`,
/// copied (or given with `--vdrive`) to each client, whose default alias
/// `tahoe:` it is.
pub const VDRIVE_FILE: &str = "vdrive.cap";

/// The queen's signing key of the shared root directory (0600).
pub const VDRIVE_KEY_FILE: &str = "private/vdrive.pem";

/// Written once the queen has published the empty root: it is never
/// published again (a second empty root on other servers could hide the
/// real one while those are away).
pub const VDRIVE_PUBLISHED_FILE: &str = "private/vdrive.published";

/// The convergence secret (base32).
pub const CONVERGENCE_FILE: &str = "private/convergence";

/// The running node's process id.
const PID_FILE: &str = "node.pid";

/// What the running node reports about itself.
pub const STATUS_FILE: &str = "status.json";

/// Known storage servers, kept across restarts.
pub const SERVERS_FILE: &str = "servers.json";

/// Maintenance's progress and last cycles (client nodes).
pub const MAINTENANCE_STATE_FILE: &str = "maintenance/state.json";

/// Caps maintenance keeps alive besides what the aliases reach: one a
/// line (`tahoe put --keep` adds them), 0600.
pub const KEEP_FILE: &str = "private/keep";

/// The lease crawler's position and last cycles (storage nodes).
pub const CRAWLER_STATE_FILE: &str = "crawler/state.json";

/// Make `dir` (and its parents) if needed, readable by its owner only: a
/// base directory holds secrets and, while uploads are spooled, plaintext.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

/// A shared drive's cap: a directory's.
pub fn parse_vdrive(text: &str) -> Result<DirCap> {
    match text.trim().parse::<Cap>()? {
        Cap::Dir(d) => Ok(d),
        other => bail!(
            "the shared drive must be a directory's cap (URI:DIR2:...), not {} cap",
            other.a_kind()
        ),
    }
}

/// The shared drive of the node in `basedir`, if it has one.
pub fn vdrive_of(basedir: &Path) -> Result<Option<DirCap>> {
    let path = basedir.join(VDRIVE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_vdrive(&text)
            .map(Some)
            .with_context(|| path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The queen's address: `node.introducer`, else the one the client was
/// created with, else an `introducer.url` copied into the base directory.
pub fn introducer_of(cfg: &NodeConfig) -> Result<QueenAddress> {
    if !cfg.node.introducer.is_empty() {
        return QueenAddress::parse(&cfg.node.introducer)
            .with_context(|| format!("node.introducer{}", cfg.origin("node.introducer")));
    }
    let basedir = cfg.basedir();
    for file in [CLIENT_INTRODUCER_FILE, INTRODUCER_FILE] {
        let path = basedir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return QueenAddress::parse(&text).with_context(|| path.display().to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    bail!(
        "node.introducer is not set and neither {} nor {} exists",
        basedir.join(CLIENT_INTRODUCER_FILE).display(),
        basedir.join(INTRODUCER_FILE).display()
    )
}

/// The client's convergence secret (`private/convergence`).
pub fn convergence_secret(basedir: &Path) -> Result<Vec<u8>> {
    let path = basedir.join(CONVERGENCE_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    tahoe_core::base32::decode(text.trim())
        .with_context(|| format!("{} is not base32", path.display()))
}

/// Whether a process with this id is alive.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
}

/// The pid in a base directory's pid file, if its process is alive.
pub fn running_pid(basedir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(basedir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    process_alive(pid).then_some(pid)
}

/// The running node's claim on its base directory: an exclusive lock on
/// `node.lock`, held for the life of the process (the kernel drops it when
/// the process dies, however it dies), and the pid file for `stop` and
/// `status`.
pub struct NodeLock {
    _lock: std::fs::File,
    pid_file: PathBuf,
}

impl NodeLock {
    /// Take the base directory for this process, or say which node has it.
    pub fn take(basedir: &Path) -> Result<Self> {
        let path = basedir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = running_pid(basedir)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                bail!(
                    "a node is already running in {}{pid}: {} is locked",
                    basedir.display(),
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let pid_file = basedir.join(PID_FILE);
        std::fs::write(&pid_file, format!("{}\n", std::process::id()))?;
        Ok(NodeLock {
            _lock: lock,
            pid_file,
        })
    }
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The queen's grid secret (`private/grid.secret`).
pub fn grid_secret(basedir: &Path) -> Result<tahoe_core::protocol::GridSecret> {
    let path = basedir.join(GRID_SECRET_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    tahoe_core::base32::decode_array::<32>(text.trim())
        .with_context(|| format!("{} is not a 32-byte base32 secret", path.display()))
}

/// Where a port for the gateway may be written, as in the seed.
pub const WEBPORT_FILE: &str = "webport";

/// The port to serve on: `web.port`, else `BASEDIR/webport`.
pub fn web_port(cfg_port: Option<u16>, basedir: &Path) -> Result<Option<u16>> {
    if cfg_port.is_some() {
        return Ok(cfg_port);
    }
    let file = basedir.join(WEBPORT_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let t = text.trim();
            let t = t.rsplit(':').next().unwrap_or(t);
            Ok(Some(t.parse().with_context(|| {
                format!("{}: {text:?} is not a port number", file.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Where the aliases are kept, under the base directory.
pub const ALIASES_FILE: &str = "private/aliases";

/// Log directory under a base directory.
pub const LOG_DIR: &str = "logs";

/// Where the token is kept.
pub const TOKEN_FILE: &str = "private/web.token";
