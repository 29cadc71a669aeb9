//! Background nodes (`start`, `stop`, `status`) and logging.

use crate::basedir::LOG_DIR;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::basedir::{STATUS_FILE, running_pid};
use crate::node::Status;

/// Log to stderr, and for a node also to `BASEDIR/logs/tahoe.log`.
/// `RUST_LOG` sets the filter (default `info` for nodes, `warn` otherwise);
/// not a `TAHOE_*` variable, since those are configuration keys.
pub fn init_logging(basedir: Option<&Path>) -> Result<()> {
    let default = if basedir.is_some() { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match basedir {
        Some(dir) => {
            let logs = dir.join(LOG_DIR);
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("creating {}", logs.display()))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join("tahoe.log"))
                .with_context(|| format!("opening {}", logs.join("tahoe.log").display()))?;
            let file = std::sync::Arc::new(file);
            let _ = builder
                .with_ansi(false)
                .with_writer(std::io::stderr.and(move || FileWriter(file.clone())))
                .try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
    Ok(())
}

struct FileWriter(std::sync::Arc<std::fs::File>);

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}

/// `tahoe start`: run the node in the background and wait until it is up.
pub fn start(basedir: &Path, out: &mut dyn Write) -> Result<()> {
    use std::os::unix::process::CommandExt;
    if !basedir
        .join(tahoe_core::plugin::config::CONFIG_FILE)
        .exists()
    {
        bail!(
            "{} is not a node's base directory (no tahoe.toml)",
            basedir.display()
        );
    }
    if let Some(pid) = running_pid(basedir) {
        bail!(
            "a node is already running in {} (pid {pid})",
            basedir.display()
        );
    }
    let logs = basedir.join(LOG_DIR);
    std::fs::create_dir_all(&logs)?;
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join("stderr.log"))?;
    let _ = std::fs::remove_file(basedir.join(STATUS_FILE));
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("run")
        .arg("--basedir")
        .arg(basedir)
        .stdin(std::process::Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .spawn()
        .context("starting the node process")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(logs.join("stderr.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            bail!(
                "the node exited at once ({status}):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if basedir.join(STATUS_FILE).exists() {
            writeln!(
                out,
                "node started in {} (pid {})",
                basedir.display(),
                child.id()
            )?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "the node did not come up within 20 s; see {}",
        logs.display()
    )
}

#[allow(unsafe_code)]
fn terminate(pid: u32) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc != 0 {
        bail!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `tahoe stop`: SIGTERM, then wait for a clean exit.
pub fn stop(basedir: &Path, out: &mut dyn Write) -> Result<()> {
    let Some(pid) = running_pid(basedir) else {
        bail!("no node is running in {}", basedir.display());
    };
    terminate(pid)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !crate::basedir::process_alive(pid) {
            writeln!(out, "node stopped (pid {pid})")?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the node (pid {pid}) did not exit within 30 s")
}

/// `tahoe status [--json]`: what the node is and, when it runs, what it
/// said of itself (`status.json`); for a client, what maintenance and the
/// lease crawler last saved. The text and the JSON show the same report.
pub fn status(basedir: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let report = status_report(basedir)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_status(&report, out)?;
    }
    Ok(())
}

/// The report `tahoe status` shows, as JSON: `role`, `node_id`,
/// `running`, and when running `pid`, `address`, `queen_connected`,
/// `known_servers`, `connected_servers`, `servers` (`nickname`,
/// `address`); `maintenance`
/// (`line`, `bad`) for clients, `storage` lines where the crawler ran.
fn status_report(basedir: &Path) -> Result<serde_json::Value> {
    use serde_json::json;
    let cfg = tahoe_core::plugin::config::NodeConfig::load(basedir)?;
    let key = tahoe_core::protocol::identity::NodeKey::load(basedir)?;
    let mut report = json!({
        "role": format!("{:?}", cfg.node.role).to_lowercase(),
        "node_id": key.node_id().to_string(),
        "running": false,
    });
    if let Some(pid) = running_pid(basedir) {
        report["running"] = true.into();
        report["pid"] = pid.into();
        let status: Option<Status> = std::fs::read(basedir.join(STATUS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = status {
            report["address"] = s.address.into();
            report["queen_connected"] = s.queen_connected.into();
            report["known_servers"] = s.known_servers.into();
            report["connected_servers"] = s.connected_servers.into();
            report["servers"] = s
                .servers
                .into_iter()
                .map(|(nickname, address)| json!({"nickname": nickname, "address": address}))
                .collect();
        }
    }
    if cfg.node.role == tahoe_core::plugin::config::Role::Client {
        let state = crate::client::maintenance::load_state(basedir)?;
        let now = crate::client::maintenance::system_now();
        let maintenance = crate::web::maintenance::Report::new(&state, &cfg.maintenance, now);
        report["maintenance"] = maintenance
            .lines()
            .into_iter()
            .map(|(line, bad)| json!({"line": line, "bad": bad}))
            .collect();
    }
    let path = basedir.join(crate::basedir::CRAWLER_STATE_FILE);
    if path.exists() {
        let state = tahoe_core::server::crawler::load_state(&path)?;
        report["storage"] = crate::web::storage::Summary::of(&state).lines().into();
    }
    Ok(report)
}

fn print_status(r: &serde_json::Value, out: &mut dyn Write) -> Result<()> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let role = text(&r["role"]);
    let mut role_chars = role.chars();
    let role: String = role_chars
        .next()
        .map(|c| c.to_uppercase().chain(role_chars).collect())
        .unwrap_or_default();
    writeln!(out, "role:        {role}")?;
    writeln!(out, "node id:     {}", text(&r["node_id"]))?;
    if r["running"] == true {
        writeln!(out, "state:       running (pid {})", r["pid"])?;
    } else {
        writeln!(out, "state:       not running")?;
    }
    if let Some(address) = r["address"].as_str() {
        writeln!(out, "address:     {address}")?;
        if let Some(c) = r["queen_connected"].as_bool() {
            let c = if c { "connected" } else { "not connected" };
            writeln!(out, "queen:       {c}")?;
        }
        writeln!(
            out,
            "servers:     {} known, {} connected",
            r["known_servers"], r["connected_servers"]
        )?;
        for s in r["servers"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  {:<12} {}",
                text(&s["nickname"]),
                text(&s["address"])
            )?;
        }
    }
    if let Some(lines) = r["maintenance"].as_array() {
        writeln!(out, "maintenance:")?;
        for l in lines {
            let line = text(&l["line"]);
            // Red on a terminal: bad news must not look like the rest.
            if l["bad"] == true && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                writeln!(out, "  \x1b[31m{line}\x1b[0m")?;
            } else {
                writeln!(out, "  {line}")?;
            }
        }
    }
    if let Some(lines) = r["storage"].as_array() {
        writeln!(out, "storage:")?;
        for l in lines {
            writeln!(out, "  {}", text(l))?;
        }
    }
    Ok(())
}
