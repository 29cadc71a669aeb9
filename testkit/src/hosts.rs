//! Hosts on one machine: Linux network namespaces joined by a bridge, and
//! a grid set up on them as README's "A grid on several machines" says.
//!
//! Each host is a namespace with one interface, `eth0`, on the test subnet
//! `10.213.0.0/24`; the bridge lives in a namespace of its own (the
//! "switch"), so nothing of the test touches the machine's own network and
//! nothing leaves it. The switch's port for host `i` is `p{i}`: taking it
//! down is a cable pulled (packets vanish, nobody is told), and its
//! counters are what the host sent and received. Needs root and iproute2
//! (`ip`, `tc`); without them [`Hosts::new`] panics saying so. Everything
//! is removed on drop, processes first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{exe, text};

/// The test subnet's prefix: host `i` is `10.213.0.{10 + i}` until moved.
const SUBNET: &str = "10.213.0";

/// A set of hosts (network namespaces) on one bridge.
pub struct Hosts {
    names: Vec<String>,
    switch: String,
    addrs: Vec<String>,
}

/// Run `ip ARGS`, panicking with its error when it fails.
fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
    assert!(
        o.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        text(&o.stderr)
    );
}

/// Remove the namespaces of test runs whose process is gone (killed
/// before its drop ran): `t{PID}x...` with no process `PID`.
fn remove_stale() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in text(&o.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix('t')
            .and_then(|r| r.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Hosts {
    /// `count` hosts, each up with its address, all on one bridge.
    pub fn new(count: usize) -> Hosts {
        assert!(
            is_root(),
            "the multi-host tests make network namespaces: they need root"
        );
        // Unique per set of hosts, short: interface names are
        // per-namespace, but namespace names are machine-wide, and several
        // tests of one process make hosts at once.
        static SETS: AtomicUsize = AtomicUsize::new(0);
        let set = SETS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("t{}x{set}", std::process::id());
        let switch = format!("{tag}sw");
        let names: Vec<String> = (0..count).map(|i| format!("{tag}h{i}")).collect();
        remove_stale();
        ip(&["netns", "add", &switch]);
        // Only what was made is removed on drop.
        let mut hosts = Hosts {
            names: Vec::new(),
            switch: switch.clone(),
            addrs: Vec::new(),
        };
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (i, name) in names.iter().enumerate() {
            ip(&["netns", "add", name]);
            hosts.names.push(name.clone());
            let port = format!("p{i}");
            ip(&[
                "link", "add", &port, "netns", &switch, "type", "veth", "peer", "name", "eth0",
                "netns", name,
            ]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            let addr = format!("{SUBNET}.{}", 10 + i);
            ip(&[
                "-n",
                name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", name, "link", "set", "eth0", "up"]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
            hosts.addrs.push(addr);
        }
        hosts
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Host `i`'s address now.
    pub fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// `PROGRAM` to be run on host `i` (`ip netns exec HOST PROGRAM`).
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[i]]).arg(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("TAHOE_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// `tahoe ARGS` on host `i`, to completion (killed after `secs`).
    pub fn tahoe(&self, i: usize, args: &[&str], secs: u64) -> Output {
        let child = self
            .command(i, exe())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        crate::output_within(
            child,
            secs,
            &format!("`tahoe {}` on host {i}", args.join(" ")),
        )
    }

    /// Pull host `i`'s cable: its switch port goes down, its packets and
    /// those sent to it vanish without a word to either side.
    pub fn link_down(&self, i: usize) {
        ip(&["-n", &self.switch, "link", "set", &format!("p{i}"), "down"]);
    }

    /// Plug host `i`'s cable back in.
    pub fn link_up(&self, i: usize) {
        ip(&["-n", &self.switch, "link", "set", &format!("p{i}"), "up"]);
    }

    /// Give host `i` a new address on the subnet (the old one removed).
    pub fn move_to(&mut self, i: usize, last_octet: u8) {
        let new = format!("{SUBNET}.{last_octet}");
        let name = &self.names[i];
        // The old one first: removing a primary address removes the
        // secondaries of its subnet with it (Linux's default).
        ip(&[
            "-n",
            name,
            "addr",
            "del",
            &format!("{}/24", self.addrs[i]),
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{new}/24"),
            "dev",
            "eth0",
        ]);
        self.addrs[i] = new;
    }

    /// Limit what each host sends to `mbit` Mbit/s (a token bucket on its
    /// `eth0`), so that a transfer of some MiB lasts long enough to cut a
    /// link in the middle of it.
    pub fn limit_rate(&self, mbit: u32) {
        for name in &self.names {
            ip(&["-n", name, "link", "set", "eth0", "txqueuelen", "1000"]);
            let o = Command::new("ip")
                .args([
                    "netns", "exec", name, "tc", "qdisc", "replace", "dev", "eth0",
                ])
                .args(["root", "tbf", "rate", &format!("{mbit}mbit")])
                .args(["burst", "256kb", "latency", "200ms"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run `tc` (iproute2): {e}"));
            assert!(o.status.success(), "tc: {}", text(&o.stderr));
        }
    }

    /// Bytes host `i` has sent so far (its switch port's receive counter).
    pub fn sent(&self, i: usize) -> u64 {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.switch, "cat"])
            .arg(format!("/sys/class/net/p{i}/statistics/rx_bytes"))
            .output()
            .unwrap();
        text(&o.stdout).trim().parse().unwrap()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for name in &self.names {
            if let Ok(o) = Command::new("ip").args(["netns", "pids", name]).output() {
                for pid in text(&o.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<u32>() {
                        crate::signal_pid(pid, libc::SIGKILL);
                    }
                }
            }
        }
        // Give the killed a moment to go: a namespace with processes left
        // would outlive its name.
        std::thread::sleep(Duration::from_millis(100));
        for name in self.names.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The port every client node listens on (each host has its own address).
pub const CLIENT_PORT: u16 = 3457;
/// The queen's port, on host 0.
pub const QUEEN_PORT: u16 = 3456;

/// A grid on [`Hosts`], made as README's "A grid on several machines" says:
/// the queen on host 0 (`create-queen --listen 0.0.0.0:3456`, `advertise`
/// under `[transport]`, started, its `introducer.url` given to the others),
/// a storage client on every other host (`create-client --introducer URL
/// --vdrive CAP`, `listen = "0.0.0.0:3457"` and `advertise` under
/// `[transport]`, started). The base directories are in one temporary
/// directory of the machine's (the hosts share a file system).
pub struct HostGrid {
    /// The hosts.
    pub hosts: Hosts,
    /// Where every base directory is.
    pub dir: tempfile::TempDir,
    /// The queen's base directory (on host 0).
    pub queen: PathBuf,
    /// Client `i`'s base directory, on host `i` (index 0 unused: the
    /// queen's host has no client).
    pub clients: Vec<PathBuf>,
}

/// The grid the multi-host test and bench run: four storage hosts,
/// 2-of-4, happy with 3 (one host may be lost), and a LAN's call budget of
/// 5 s, so that a silent host costs seconds, not the default minute.
pub const LAN_CONFIG: &str = "
[encoding]
k = 2
happy = 3
n = 4

[transport.tarpc-tcp]
call_timeout_secs = 5
";

impl HostGrid {
    /// [`HostGrid::up`] with [`LAN_CONFIG`] on every node, and a web
    /// gateway on `web_port` for host 1's node.
    pub fn lan(hosts: Hosts, web_port: u16) -> HostGrid {
        HostGrid::up(hosts, |i| {
            if i == 1 {
                format!("{LAN_CONFIG}\n[web]\nport = {web_port}\n")
            } else {
                LAN_CONFIG.to_string()
            }
        })
    }

    /// The grid, every node started; `extra(i)` is appended to host `i`'s
    /// node's tahoe.toml (0: the queen) before it starts. Returns once the
    /// client on host 1 sees the shared drive.
    pub fn up(hosts: Hosts, extra: impl Fn(usize) -> String) -> HostGrid {
        let dir = tempfile::tempdir().unwrap();
        let queen = dir.path().join("Q");
        let q = queen.to_str().unwrap();
        let listen = format!("0.0.0.0:{QUEEN_PORT}");
        let o = hosts.tahoe(
            0,
            &["create-queen", "--basedir", q, "--listen", &listen],
            60,
        );
        assert!(o.status.success(), "create-queen: {}", text(&o.stderr));
        // "in Q/tahoe.toml, under [transport]: advertise = ..."
        let toml = std::fs::read_to_string(queen.join("tahoe.toml")).unwrap();
        assert!(toml.contains("[transport]\n"), "{toml}");
        let toml = toml.replace(
            "[transport]\n",
            &format!(
                "[transport]\nadvertise = \"{}:{QUEEN_PORT}\"\n",
                hosts.addr(0)
            ),
        );
        std::fs::write(queen.join("tahoe.toml"), toml + &extra(0)).unwrap();
        let mut grid = HostGrid {
            hosts,
            dir,
            queen: queen.clone(),
            clients: vec![PathBuf::new()],
        };
        grid.start(0, &queen);
        let url = std::fs::read_to_string(queen.join("introducer.url")).unwrap();
        assert!(
            url.contains(&format!("@{}:{QUEEN_PORT}/", grid.hosts.addr(0))),
            "the queen's introducer.url does not carry its advertised address: {url}"
        );
        let vdrive = std::fs::read_to_string(queen.join("vdrive.cap")).unwrap();
        for i in 1..grid.hosts.len() {
            let c = grid.dir.path().join(format!("C{i}"));
            let nickname = format!("host{i}");
            let o = grid.hosts.tahoe(
                i,
                &[
                    "create-client",
                    "--basedir",
                    c.to_str().unwrap(),
                    "--introducer",
                    url.trim(),
                    "--vdrive",
                    vdrive.trim(),
                    "--nickname",
                    &nickname,
                ],
                60,
            );
            assert!(o.status.success(), "create-client: {}", text(&o.stderr));
            grid.clients.push(c);
            grid.set_transport(i);
            let config = grid.clients[i].join("tahoe.toml");
            let toml = std::fs::read_to_string(&config).unwrap() + &extra(i);
            std::fs::write(&config, toml).unwrap();
            let c = grid.clients[i].clone();
            grid.start(i, &c);
        }
        grid.wait_drive(1);
        grid
    }

    /// Write host `i`'s `[transport]` table (listen on every address,
    /// advertise the host's address now), replacing one written before.
    pub fn set_transport(&self, i: usize) {
        let config = self.clients[i].join("tahoe.toml");
        let toml = std::fs::read_to_string(&config).unwrap();
        let table = format!(
            "[transport]\nlisten = \"0.0.0.0:{CLIENT_PORT}\"\nadvertise = \"{}:{CLIENT_PORT}\"\n",
            self.hosts.addr(i)
        );
        let toml = match toml.find("[transport]\n") {
            Some(at) => {
                // The table written here is three lines long.
                let end = toml[at..]
                    .match_indices('\n')
                    .nth(2)
                    .map(|(n, _)| at + n + 1)
                    .unwrap();
                format!("{}{table}{}", &toml[..at], &toml[end..])
            }
            None => format!("{toml}\n{table}"),
        };
        std::fs::write(&config, toml).unwrap();
    }

    /// `tahoe start --basedir DIR` on host `i`.
    pub fn start(&self, i: usize, basedir: &Path) {
        let o = self
            .hosts
            .tahoe(i, &["start", "--basedir", basedir.to_str().unwrap()], 60);
        assert!(
            o.status.success(),
            "start on host {i}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }

    /// `tahoe stop --basedir DIR` on host `i`.
    pub fn stop(&self, i: usize, basedir: &Path) {
        let o = self
            .hosts
            .tahoe(i, &["stop", "--basedir", basedir.to_str().unwrap()], 60);
        assert!(o.status.success(), "stop on host {i}: {}", text(&o.stderr));
    }

    /// `tahoe ARGS -d C{i}` on host `i`: its standard output, or its error.
    pub fn run(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let mut all = args.to_vec();
        all.extend(["-d", self.clients[i].to_str().unwrap()]);
        let o = self.hosts.tahoe(i, &all, 300);
        if o.status.success() {
            Ok(text(&o.stdout))
        } else {
            Err(text(&o.stderr))
        }
    }

    /// Wait until the client on host `i` sees the shared drive.
    pub fn wait_drive(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match self.run(i, &["ls", "tahoe:"]) {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "host {i} never saw the shared drive: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `PUT /uri` of `file` through the gateway of host `i`'s node on
    /// `port` (with curl, in the host): the cap, or the status and answer.
    pub fn web_put(&self, i: usize, port: u16, file: &Path) -> Result<String, String> {
        let o = self
            .hosts
            .command(i, "curl")
            .args(["-sS", "--max-time", "120", "-T"])
            .arg(file)
            .args(["-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/uri"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
        let out = text(&o.stdout);
        let (body, code) = out.rsplit_once('\n').unwrap_or((&out, ""));
        if o.status.success() && code == "200" {
            Ok(body.trim().to_string())
        } else {
            Err(format!("{code}: {body}{}", text(&o.stderr)))
        }
    }

    /// Upload fresh 100 kB files through host `i`'s gateway on `port`
    /// until one puts a share on every host in `on`; how long that took
    /// (panics after 90 s, saying `what`).
    pub fn until_used(&self, i: usize, port: u16, on: &[usize], what: &str) -> Duration {
        let t0 = Instant::now();
        for round in 0u64.. {
            let before: Vec<_> = on.iter().map(|&h| self.share_files(h)).collect();
            let f = self.dir.path().join("probe");
            std::fs::write(
                &f,
                tahoe_core::testing::pseudo_random_bytes(1000 + round, 100_000),
            )
            .unwrap();
            let put = self.web_put(i, port, &f);
            let placed = on
                .iter()
                .zip(&before)
                .all(|(&h, b)| self.share_files(h).len() > b.len());
            if put.is_ok() && placed {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "{what}: hosts {on:?} not used again within 90 s (last put: {put:?})"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        unreachable!()
    }

    /// The share files in host `i`'s storage.
    pub fn share_files(&self, i: usize) -> Vec<PathBuf> {
        crate::share_files(&self.clients[i].join("storage"))
    }
}

impl Drop for HostGrid {
    fn drop(&mut self) {
        // Stopped cleanly where they answer; the hosts' drop kills the rest.
        for (i, c) in self.clients.iter().enumerate().skip(1) {
            let _ = self
                .hosts
                .command(i, exe())
                .args(["stop", "--basedir", c.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
