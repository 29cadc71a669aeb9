//! Grids of real `tahoe` processes talking TLS over TCP on 127.0.0.1, each
//! node in its own temporary base directory, and the clients tests drive
//! them with (the CLI, raw HTTP).

#![allow(dead_code, clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_tahoe");

/// The binary the grids run: this build's, or `TEST_TAHOE_EXE` (another
/// build, to check by hand that a test fails without the fix it tests).
pub fn exe() -> String {
    std::env::var("TEST_TAHOE_EXE").unwrap_or_else(|_| EXE.to_string())
}

/// Run a `tahoe` command to completion, killing it after `secs`.
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
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`tahoe {}` did not finish within {secs} s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[allow(unsafe_code)]
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub struct Grid {
    pub dir: tempfile::TempDir,
    pub queen: PathBuf,
    pub clients: Vec<PathBuf>,
    pub running: BTreeMap<PathBuf, Child>,
}

impl Grid {
    pub fn new(clients: usize) -> Grid {
        Grid::with_config(clients, |_, _| String::new())
    }

    /// A grid whose client `i` (in base directory `dir`) has
    /// `extra(i, dir)` appended to its tahoe.toml (whose last table is
    /// `[storage]`) before it starts.
    pub fn with_config(clients: usize, extra: impl Fn(usize, &Path) -> String) -> Grid {
        let dir = tempfile::tempdir().unwrap();
        let queen = dir.path().join("queen");
        let o = tahoe(
            &["create-queen", "--basedir", queen.to_str().unwrap()],
            &[],
            30,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let url = std::fs::read_to_string(queen.join("introducer.url")).unwrap();
        let mut g = Grid {
            dir,
            queen: queen.clone(),
            clients: Vec::new(),
            running: BTreeMap::new(),
        };
        let vdrive = std::fs::read_to_string(queen.join("vdrive.cap")).unwrap();
        for i in 0..clients {
            let c = g.dir.path().join(format!("node{i}"));
            let nickname = format!("node{i}");
            let mut args = vec![
                "create-client",
                "--basedir",
                c.to_str().unwrap(),
                "--introducer",
                url.trim(),
                "--nickname",
                &nickname,
            ];
            // The shared drive's cap: copied into the first client's base
            // directory, as the seed did; given to the others at creation.
            if i == 0 {
                std::fs::create_dir_all(&c).unwrap();
                std::fs::write(c.join("vdrive.cap"), &vdrive).unwrap();
            } else {
                args.extend(["--vdrive", vdrive.trim()]);
            }
            let o = tahoe(&args, &[], 30);
            assert!(o.status.success(), "{}", text(&o.stderr));
            let config = c.join("tahoe.toml");
            let mut toml = std::fs::read_to_string(&config).unwrap();
            toml.push_str(&extra(i, &c));
            std::fs::write(&config, toml).unwrap();
            g.clients.push(c);
        }
        g.start(&queen);
        for c in g.clients.clone() {
            g.start(&c);
        }
        g.wait_known(&g.clients[0].clone(), clients);
        g
    }

    pub fn start(&mut self, basedir: &Path) {
        self.start_with(basedir, |_| {});
    }

    /// Start the node in `basedir` with its command shaped by `shape`
    /// first.
    pub fn start_with(&mut self, basedir: &Path, shape: impl FnOnce(&mut Command)) {
        let log = std::fs::File::create(basedir.join("test-run.log")).unwrap();
        let mut cmd = Command::new(exe());
        cmd.args(["run", "--basedir", basedir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        shape(&mut cmd);
        let child = cmd.spawn().unwrap();
        self.running.insert(basedir.to_path_buf(), child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !basedir.join("status.json").exists() {
            assert!(
                Instant::now() < deadline,
                "{} did not start",
                basedir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn status(&self, basedir: &Path) -> serde_json::Value {
        std::fs::read(basedir.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn wait_known(&self, client: &Path, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let known = self.status(client)["known_servers"].as_u64().unwrap_or(0);
            if known as usize >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} knows {known} of {count} servers",
                client.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self, basedir: &Path) {
        let mut child = self.running.remove(basedir).unwrap();
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                basedir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!basedir.join("node.pid").exists(), "pid file left behind");
    }

    pub fn kill9(&mut self, basedir: &Path) {
        let mut child = self.running.remove(basedir).unwrap();
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        let _ = std::fs::remove_file(basedir.join("status.json"));
    }

    pub fn put(&self, client: &Path, file: &Path, env: &[(&str, &str)]) -> Result<String, String> {
        self.put_with(client, &[file.to_str().unwrap()], env)
    }

    /// `tahoe put --basedir CLIENT ARGS...`: standard output, or the error.
    pub fn put_with(
        &self,
        client: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut all = vec!["put", "--basedir", client.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = tahoe(&all, env, 120);
        if o.status.success() {
            Ok(text(&o.stdout).trim().to_string())
        } else {
            Err(text(&o.stderr))
        }
    }

    pub fn get(&self, client: &Path, cap: &str) -> Result<Vec<u8>, String> {
        let out = self.dir.path().join("download");
        let o = tahoe(
            &[
                "get",
                "--basedir",
                client.to_str().unwrap(),
                cap,
                out.to_str().unwrap(),
            ],
            &[],
            120,
        );
        if o.status.success() {
            Ok(std::fs::read(&out).unwrap())
        } else {
            Err(text(&o.stderr))
        }
    }

    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// One HTTP/1.1 request over a plain TCP connection: status, headers
/// (lower-case names) and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    http_raw(port, &[req.as_bytes(), body])
}

/// Send `parts` on a new connection and read the answer: status, headers
/// (lower-case names) and body. A server that answers before taking the
/// whole request (a `413`, say) and closes is read all the same.
pub fn http_raw(port: u16, parts: &[&[u8]]) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    for p in parts {
        if s.write_all(p).is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", text(&raw)));
    let head = text(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// The peak resident memory of a process (VmHWM), in bytes; it must be
/// known.
pub fn peak_rss(pid: u32) -> u64 {
    let kib = tahoe_core::testing::proc_status_kib(&pid.to_string(), "VmHWM:");
    assert!(kib > 0, "no VmHWM in /proc/{pid}/status");
    kib * 1024
}
