//! Whole-grid benchmark: a queen and ten storage nodes as real processes
//! on 127.0.0.1 (TLS over TCP), uploads and downloads through `tahoe put` /
//! `tahoe get` (the gateway), 3-of-10.
//!
//! Prints, per size, the median of three runs with fresh random data each,
//! the peak RSS of the gateway process and of the storage nodes, and the
//! CPU the idle grid uses. Nodes store under /dev/shm when it exists (so
//! the figures are the software's, not the disk's), else the temp dir.
//!
//! Run: `cargo bench --bench grid` (sizes in MiB as arguments, default 16 128).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;

const EXE: &str = env!("CARGO_BIN_EXE_tahoe");

fn tahoe(args: &[&str]) -> String {
    let o = Command::new(EXE).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "tahoe {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Run and return (seconds, peak RSS in KiB, CPU seconds, stdout). The
/// child is reaped with wait4(2), which also gives its peak RSS and CPU.
#[allow(unsafe_code, clippy::zombie_processes)]
fn timed(args: &[&str]) -> (f64, u64, f64, String) {
    let start = Instant::now();
    let child = Command::new(EXE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, written by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    assert_eq!(status, 0, "tahoe {} failed", args.join(" "));
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        start.elapsed().as_secs_f64(),
        usage.ru_maxrss as u64,
        cpu(usage.ru_utime) + cpu(usage.ru_stime),
        reader.join().unwrap().trim().to_string(),
    )
}

fn proc_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    let sizes: Vec<u64> = {
        let a: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if a.is_empty() { vec![16, 128] } else { a }
    };
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = dir.path();
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
    for d in &dirs {
        nodes.0.push(
            Command::new(EXE)
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
    println!(
        "grid: queen + 10 storage nodes (processes, TLS on 127.0.0.1), gateway = tahoe put/get, 3-of-10, 1 MiB segments"
    );
    let mut gateway_peak = 0;
    for size in sizes {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let (mut gw_cpu, mut nodes_cpu, mut wall) = (0.0, 0.0, 0.0);
        for run in 0..3 {
            let file = root.join("input");
            {
                use std::io::Write;
                let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
                let seed = size * 1000 + run + u64::from(std::process::id());
                for i in 0..size {
                    f.write_all(&pseudo_random_bytes(seed * 100_000 + i, 1 << 20))
                        .unwrap();
                }
            }
            let ticks0: u64 = nodes.0.iter().map(|c| cpu_ticks(c.id())).sum();
            let (t, rss, cpu, cap) = timed(&[
                "put",
                "--basedir",
                gateway.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
            let ticks1: u64 = nodes.0.iter().map(|c| cpu_ticks(c.id())).sum();
            gw_cpu += cpu;
            nodes_cpu += (ticks1 - ticks0) as f64 / 100.0;
            wall += t;
            gateway_peak = gateway_peak.max(rss);
            up.push((size << 20) as f64 / 1e6 / t);
            let (t, rss, _, _) = timed(&[
                "get",
                "--basedir",
                gateway.to_str().unwrap(),
                &cap,
                "/dev/null",
            ]);
            gateway_peak = gateway_peak.max(rss);
            down.push((size << 20) as f64 / 1e6 / t);
        }
        println!(
            "{size:>5} MiB  upload {:>7.1} MB/s  download {:>7.1} MB/s   (runs: up {:?}, down {:?})",
            median(up.clone()),
            median(down.clone()),
            up.iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            down.iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        println!(
            "         uploads used {:.2} cores: gateway {:.2}, storage nodes {:.2}",
            (gw_cpu + nodes_cpu) / wall,
            gw_cpu / wall,
            nodes_cpu / wall
        );
    }
    let storage_peak = nodes.0[1..]
        .iter()
        .map(|c| proc_field(c.id(), "VmHWM:"))
        .max()
        .unwrap_or(0);
    println!(
        "peak RSS: gateway {} MiB, storage node (max of 10) {} MiB, queen {} MiB",
        gateway_peak / 1024,
        storage_peak / 1024,
        proc_field(nodes.0[0].id(), "VmHWM:") / 1024
    );
    let before: u64 = nodes.0.iter().map(|c| cpu_ticks(c.id())).sum();
    let secs = 20;
    std::thread::sleep(Duration::from_secs(secs));
    let after: u64 = nodes.0.iter().map(|c| cpu_ticks(c.id())).sum();
    println!(
        "idle grid (11 processes, {secs} s): {:.2}% of one core",
        (after - before) as f64 / 100.0 / secs as f64 * 100.0
    );
}
