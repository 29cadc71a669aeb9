//! Running `tahoe` commands, and waiting for what nodes do.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::exe;

/// Run a `tahoe` command ([`exe`]) to completion, killing it after `secs`;
/// the caller's `TAHOE_*` variables are kept out of it, `env` put in.
pub fn tahoe(args: &[&str], env: &[(&str, &str)], secs: u64) -> Output {
    let mut cmd = Command::new(exe());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TAHOE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    output_within(
        cmd.spawn().unwrap(),
        secs,
        &format!("`tahoe {}`", args.join(" ")),
    )
}

/// The output of `child` (spawned with its output piped) once it ends;
/// killed, and a panic naming `what` with what it wrote to standard error,
/// when it runs over `secs`.
pub fn output_within(mut child: Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("{what} did not finish within {secs} s: {}", text(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Send signal `sig` to `child`.
pub fn signal(child: &Child, sig: i32) {
    signal_pid(child.id(), sig);
}

/// Send signal `sig` to process `pid`.
#[allow(unsafe_code)]
pub fn signal_pid(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Wait until something listens on `port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until `client` sees the shared drive (the queen publishes it
/// once the servers have announced).
pub fn wait_shared_drive(client: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while run_on(client, &["ls", "tahoe:"]).is_err() {
        assert!(Instant::now() < deadline, "the shared drive never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `tahoe ARGS... -d CLIENT`: standard output, or the error.
pub fn run_on(client: &Path, args: &[&str]) -> Result<String, String> {
    let mut all = args.to_vec();
    all.extend(["-d", client.to_str().unwrap()]);
    let o = tahoe(&all, &[], 120);
    if o.status.success() {
        Ok(text(&o.stdout))
    } else {
        Err(text(&o.stderr))
    }
}

/// Every share file under `dir` (a node's storage): the files whose names
/// are share numbers, in order.
pub fn share_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(share_files(&p));
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
