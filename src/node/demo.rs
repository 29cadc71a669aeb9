//! `tahoe demo`: a whole grid on this machine in one command.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::basedir::{STATUS_FILE, running_pid};
use crate::node::{Status, create_client, create_queen};

struct Children(Vec<(PathBuf, std::process::Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        // A clean stop (SIGTERM, wait) for each node, then make sure.
        for (dir, child) in &mut self.0 {
            if running_pid(dir).is_some() {
                let _ = crate::node::daemon::stop(dir, &mut std::io::sink());
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(dir: &Path) -> Result<std::process::Child> {
    std::fs::create_dir_all(dir.join(crate::basedir::LOG_DIR))?;
    let log = std::fs::File::create(dir.join(crate::basedir::LOG_DIR).join("stderr.log"))?;
    std::process::Command::new(std::env::current_exe()?)
        .args(["run", "--basedir"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a node")
}

/// The web UI's port: `wanted`, else 3456 when free, else any free port.
fn pick_port(wanted: Option<u16>) -> Result<u16> {
    if let Some(p) = wanted {
        return Ok(p);
    }
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).ok();
    let l = free(3456)
        .or_else(|| free(0))
        .context("no free port for the web UI")?;
    Ok(l.local_addr()?.port())
}

/// Create (or reuse) the grid under `dir`, run it until Ctrl-C. The first
/// storage node serves the web UI on `web_port` (default 3456, or any free
/// port when that is taken).
pub async fn run(
    dir: Option<PathBuf>,
    clients: usize,
    web_port: Option<u16>,
    out: &mut dyn Write,
) -> Result<()> {
    let root = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tahoe-demo-{}", std::process::id())));
    let dirs = create_grid(&root, clients).await?;
    let queen = &dirs[0];
    // The first client serves the web UI (a reused grid keeps its port
    // unless another is asked for).
    let first = &dirs[1.min(dirs.len() - 1)];
    let webport_file = first.join(crate::basedir::WEBPORT_FILE);
    if web_port.is_some() || !webport_file.exists() {
        std::fs::write(&webport_file, format!("{}\n", pick_port(web_port)?))?;
    }
    let port = crate::basedir::web_port(None, first)?.context("the demo's web port")?;
    let mut children = Children(Vec::new());
    for d in &dirs {
        children.0.push((d.clone(), spawn(d)?));
    }
    wait_until_ready(queen, first, clients, port).await;
    writeln!(
        out,
        "A grid is running: a queen and {clients} storage nodes under {}.",
        root.display()
    )?;
    // The address carries the node's web token once (see web::token).
    let url = crate::web::token::with_token(&format!("{}/", crate::web::base_url(first)?), first)?;
    writeln!(out, "\nWeb UI: {url}   (open it in a browser)\n")?;
    print_commands(first, out)?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    let _ = tokio::signal::ctrl_c().await;
    writeln!(out, "stopping...")?;
    drop(children);
    if root.starts_with(std::env::temp_dir())
        && root
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tahoe-demo-"))
    {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// The queen and `clients` storage nodes under `root` (made where
/// missing): their base directories, the queen's first.
async fn create_grid(root: &Path, clients: usize) -> Result<Vec<PathBuf>> {
    let queen = root.join("queen");
    if !queen.join(tahoe_core::plugin::config::CONFIG_FILE).exists() {
        create_queen(&queen, "queen", None).await?;
    }
    let introducer = std::fs::read_to_string(queen.join(crate::basedir::INTRODUCER_FILE))?;
    let vdrive = std::fs::read_to_string(queen.join(crate::basedir::VDRIVE_FILE))?;
    scale_encoding(&queen, clients)?;
    let mut dirs = vec![queen];
    for i in 0..clients {
        let c = root.join(format!("node{i}"));
        if !c.join(tahoe_core::plugin::config::CONFIG_FILE).exists() {
            create_client(
                &c,
                Some(introducer.trim()),
                &format!("node{i}"),
                true,
                Some(vdrive.trim()),
            )?;
            scale_encoding(&c, clients)?;
            if i == 0 {
                sftp_account(&c, vdrive.trim())?;
                s3_key(&c, vdrive.trim())?;
            }
        }
        dirs.push(c);
    }
    Ok(dirs)
}

/// The user name of the demo's SFTP account.
const SFTP_USER: &str = "demo";
/// Its private key, in the first client's base directory.
const SFTP_USER_KEY: &str = "private/sftp-demo-key";

/// Turn on the SFTP server of the client in `dir` (on 8022, else any free
/// port) with one account, `demo`, whose key is made here and whose root
/// is the shared drive.
fn sftp_account(dir: &Path, vdrive: &str) -> Result<()> {
    let key = crate::fs::sftp::load_or_make_key(&dir.join(SFTP_USER_KEY))?;
    let line = crate::fs::sftp::public_line(&key)?;
    let mut fields = line.split_whitespace();
    let (kind, blob) = (fields.next(), fields.next());
    let (Some(kind), Some(blob)) = (kind, blob) else {
        anyhow::bail!("an SSH public key without its fields");
    };
    let accounts = tahoe_core::plugin::config::SftpSection::default().accounts_file;
    tahoe_core::protocol::identity::write_private(
        &dir.join(accounts),
        format!("# USERNAME KEY-TYPE PUBLIC-KEY ROOTCAP\n{SFTP_USER} {kind} {blob} {vdrive}\n")
            .as_bytes(),
    )?;
    let port = free_port(8022, "SFTP")?;
    let toml = dir.join(tahoe_core::plugin::config::CONFIG_FILE);
    let mut f = std::fs::OpenOptions::new().append(true).open(&toml)?;
    writeln!(f, "\n[sftp]\nenabled = true\nport = {port}")?;
    Ok(())
}

/// A port for a server of the demo: `wanted` when free, else any.
fn free_port(wanted: u16, what: &str) -> Result<u16> {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).ok();
    Ok(free(wanted)
        .or_else(|| free(0))
        .with_context(|| format!("no free port for {what}"))?
        .local_addr()?
        .port())
}

/// Turn on the S3 gateway of the client in `dir` (on 8033, else any free
/// port) with one key, made here, whose root is the shared drive: its
/// buckets are the shared drive's directories.
fn s3_key(dir: &Path, vdrive: &str) -> Result<()> {
    let mut r = [0u8; 30];
    getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let id = format!(
        "DEMO{}",
        tahoe_core::base32::encode(&r[..10]).to_ascii_uppercase()
    );
    let secret = tahoe_core::base32::encode(&r[10..]);
    let file = tahoe_core::plugin::config::S3Section::default().credentials_file;
    tahoe_core::protocol::identity::write_private(
        &dir.join(file),
        format!("# ACCESS_KEY_ID SECRET_KEY DIRCAP\n{id} {secret} {vdrive}\n").as_bytes(),
    )?;
    let port = free_port(8033, "S3")?;
    let toml = dir.join(tahoe_core::plugin::config::CONFIG_FILE);
    let mut f = std::fs::OpenOptions::new().append(true).open(&toml)?;
    writeln!(f, "\n[s3]\nenabled = true\nport = {port}")?;
    Ok(())
}

/// With fewer nodes than the default 3-of-7-of-10 needs, scale the
/// encoding of the node in `dir` down so that uploads (and the queen's
/// publishing of the shared drive) can succeed.
fn scale_encoding(dir: &Path, clients: usize) -> Result<()> {
    if clients >= 10 {
        return Ok(());
    }
    let n = clients.max(1);
    let happy = n.min(7);
    let k = happy.min(3);
    let toml = dir.join(tahoe_core::plugin::config::CONFIG_FILE);
    let text = std::fs::read_to_string(&toml)?;
    if !text.contains("[encoding]") {
        let mut f = std::fs::OpenOptions::new().append(true).open(&toml)?;
        writeln!(f, "\n[encoding]\nk = {k}\nhappy = {happy}\nn = {n}")?;
    }
    Ok(())
}

/// Wait (a while) until the first client is connected to every storage node, the
/// queen has published the shared drive and the web UI listens.
async fn wait_until_ready(queen: &Path, first: &Path, clients: usize, port: u16) {
    for _ in 0..200 {
        let known = std::fs::read(first.join(STATUS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Status>(&b).ok())
            .map(|s| s.connected_servers)
            .unwrap_or(0);
        if known >= clients {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..300 {
        if queen.join(crate::basedir::VDRIVE_PUBLISHED_FILE).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The commands a newcomer can copy, through the client in `first`: each
/// line runs as printed (from a directory holding a file `FILE` and a
/// directory `DIR`, `CAP` replaced by a cap `put FILE` printed); what it
/// does follows a shell comment. `tests/it/grids/cli.rs` runs them.
fn print_commands(first: &Path, out: &mut dyn Write) -> Result<()> {
    let exe = std::env::current_exe()?;
    let t = format!("{} -d {}", exe.display(), first.display());
    let lines: [(&str, &str); 11] = [
        (
            "put FILE tahoe:docs/FILE",
            "upload into the shared drive (makes docs/)",
        ),
        ("ls -l tahoe:docs", "list it"),
        ("get tahoe:docs/FILE OUT", "download"),
        (
            "cp -r DIR tahoe:",
            "a whole directory in (cp -r tahoe:DIR OUT2 copies it out)",
        ),
        ("mkdir tahoe:new", "a directory"),
        (
            "mv tahoe:docs/FILE tahoe:new/",
            "move (ln links, rm removes)",
        ),
        ("rm tahoe:new/FILE", "remove"),
        ("put FILE", "a file outside any directory: prints its cap"),
        ("get CAP OUT", "download it by its cap"),
        ("put --mutable FILE", "a mutable file: prints its write cap"),
        ("status", "this node, the queen and the storage servers"),
    ];
    writeln!(
        out,
        "Every node mounts the shared drive as tahoe: (node0 here):"
    )?;
    for (command, what) in lines {
        writeln!(out, "  {t} {command:<30} # {what}")?;
    }
    writeln!(
        out,
        "\nMount the shared drive (a directory MOUNTPOINT; Ctrl-C unmounts):\n  {t} mount MOUNTPOINT"
    )?;
    let cfg = tahoe_core::plugin::config::NodeConfig::load(first)?;
    if cfg.sftp.enabled {
        let key = first.join(SFTP_USER_KEY);
        let (port, host) = (cfg.sftp.port, &cfg.sftp.bind);
        let opts = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null";
        writeln!(
            out,
            "SFTP, account {SFTP_USER} (root: the shared drive):\n  \
             sftp -i {} -P {port} {opts} {SFTP_USER}@{host}\n  \
             sshfs -o IdentityFile={},port={port},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null {SFTP_USER}@{host}:/ MOUNTPOINT",
            key.display(),
            key.display()
        )?;
    }
    if cfg.s3.enabled {
        let file = first.join(&cfg.s3.credentials_file);
        let creds = std::fs::read_to_string(&file)?;
        let Some((id, secret)) = creds
            .lines()
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
            .and_then(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?, f.next()?))
            })
        else {
            anyhow::bail!("{} holds no key", file.display());
        };
        let url = format!("http://{}:{}", cfg.s3.bind, cfg.s3.port);
        writeln!(
            out,
            "S3 at {url} (region {}; buckets: the shared drive's directories):\n  \
             export AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret}\n  \
             aws --endpoint-url {url} s3 ls",
            cfg.s3.region
        )?;
    }
    Ok(())
}
