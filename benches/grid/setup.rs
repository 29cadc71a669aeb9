//! The grids the bench drives: ours started here, Tahoe-LAFS's found
//! running; the `tahoe` runner and random input files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;

/// This build's `tahoe` binary.
pub const EXE: &str = env!("CARGO_BIN_EXE_tahoe");

/// Run `tahoe ARGS...`, which must succeed: its standard output, trimmed.
pub fn tahoe(args: &[&str]) -> String {
    let o = Command::new(EXE).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "tahoe {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `mib` MiB of pseudo-random data, one seed per MiB from `seed`.
pub fn write_random_file(path: &Path, mib: u64, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..mib {
        f.write_all(&pseudo_random_bytes(seed + i, 1 << 20))
            .unwrap();
    }
}

/// The grid's node processes (the queen first), killed when dropped.
pub struct Nodes(pub Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A queen, ten storage nodes and a gateway base directory under `root`:
/// the storage nodes run `exe` with `storage` appended to their tahoe.toml
/// (whose last table is `[storage]`); the queen runs this build's `tahoe`.
/// Returns once every storage node is announced.
pub fn grid(root: &Path, exe: &str, storage: &str) -> (PathBuf, Nodes) {
    let queen = root.join("queen");
    tahoe(&["create-queen", "--basedir", queen.to_str().unwrap()]);
    let url = std::fs::read_to_string(queen.join("introducer.url")).unwrap();
    let mut dirs = vec![queen.clone()];
    for i in 0..10 {
        let c = root.join(format!("node{i}"));
        tahoe(&[
            "create-client",
            "--basedir",
            c.to_str().unwrap(),
            "--introducer",
            url.trim(),
        ]);
        let config = c.join("tahoe.toml");
        let toml = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, toml + storage).unwrap();
        dirs.push(c);
    }
    let gateway = root.join("gateway");
    tahoe(&[
        "create-client",
        "--basedir",
        gateway.to_str().unwrap(),
        "--introducer",
        url.trim(),
        "--no-storage",
    ]);
    let mut nodes = Nodes(Vec::new());
    for (i, d) in dirs.iter().enumerate() {
        nodes.0.push(
            Command::new(if i == 0 { EXE } else { exe })
                .args(["run", "--basedir", d.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    // Wait for every storage node to be announced.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = std::fs::read_to_string(root.join("node0/status.json")).unwrap_or_default();
        if status.contains("\"known_servers\": 10") {
            break;
        }
        assert!(Instant::now() < deadline, "grid did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    (gateway, nodes)
}

/// SIGSTOP or SIGCONT every pid.
#[allow(unsafe_code)]
pub fn signal_all(pids: &[u32], sig: i32) {
    for &p in pids {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(p as i32, sig);
        }
    }
}

/// The pids of the running Tahoe-LAFS grid under BASE (`tahoe-grid.sh`).
pub fn tahoe_pids(tahoe_base: Option<&Path>) -> Vec<u32> {
    let pids: Vec<u32> = tahoe_base
        .map(|b| {
            std::fs::read_dir(b.join("pids"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                        .filter_map(|t| t.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if tahoe_base.is_some() {
        assert!(
            !pids.is_empty(),
            "no Tahoe-LAFS grid is running (no pid files)"
        );
    }
    pids
}

/// Run `tahoe ARGS...` to completion: (seconds, peak RSS in KiB, CPU
/// seconds, standard output).
pub fn timed(args: &[&str]) -> (f64, u64, f64, String) {
    let m = testkit::measure::run_measured(Path::new(EXE), args);
    (m.secs, m.peak_rss_kib, m.cpu_secs, m.stdout)
}

/// Run the gateway node in `gateway` with its web API on a free port,
/// added to `nodes`, and wait until it knows the ten storage servers: its
/// base URL.
pub fn start_gateway(gateway: &Path, nodes: &mut Nodes) -> String {
    let port = tahoe_core::testing::free_port();
    nodes.0.push(
        Command::new(EXE)
            .args(["run", "--basedir", gateway.to_str().unwrap()])
            .env("TAHOE_WEB__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("curl")
        .args(["-sf", &format!("{url}/?t=json")])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .map(|v| {
            // Known servers: connections are made on first use.
            v["servers"].as_array().map_or(0, Vec::len) >= 10
        })
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "our gateway did not learn of 10 servers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    url
}
