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
//!
//! `cargo bench --bench grid -- --mutable [--tahoe BASE]` measures mutable
//! files instead: MDMF create, read, overwrite of 1 MB and a 5-byte write
//! at an offset, through a client that keeps its connections (as a
//! gateway does) and a key pool filled while idle; with `--tahoe`, the same
//! operations on a running Tahoe-LAFS 1.20 grid (`../shared/bench/
//! tahoe-grid.sh`, work folder BASE) through its web API, in turns with
//! ours, each grid frozen (SIGSTOP) while the other is measured; then a
//! 1 GiB MDMF file through `tahoe put --format mdmf` / `tahoe get` with
//! the gateway's peak RSS (`--quick` skips that). `scripts/bench-mutable.sh`
//! runs all of it.
//!
//! `cargo bench --bench grid -- --dirs [--tahoe BASE]` measures
//! directories the same way: mkdir, adding a small file, listing 20
//! entries, and a directory of 10,000 entries (list, add one, remove one),
//! then the peak RSS of `tahoe ls` / `tahoe ln` / `tahoe rm` processes on
//! that directory. `scripts/bench-dirs.sh` runs it beside Tahoe-LAFS.
//!
//! `cargo bench --bench grid -- --web [--tahoe BASE]` drives both grids'
//! web gateways with the same curl calls: time to first byte of a 1 MiB
//! and a 128 MiB download, a 10,000-entry directory's `?t=json` listing
//! and first HTML page, and 100 small-file uploads at once.
//! `scripts/bench-web.sh` runs it beside Tahoe-LAFS; upload and download
//! throughput through the gateways is `../shared/bench/side-by-side.sh`'s.
//!
//! `cargo bench --bench grid -- --plugin [SIZES]` measures what the plugin
//! ABI costs a grid: uploads and downloads on ten storage nodes keeping
//! their shares through the example `dirstore` library, against ten
//! running the same backend compiled in (`examples/static-backend`).

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
    tahoe_core::testing::proc_status_kib(&pid.to_string(), field)
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

/// `mib` MiB of pseudo-random data, one seed per MiB from `seed`.
fn write_random_file(path: &Path, mib: u64, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..mib {
        f.write_all(&pseudo_random_bytes(seed + i, 1 << 20))
            .unwrap();
    }
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
    let args: Vec<String> = std::env::args().collect();
    let mutable = args.iter().any(|a| a == "--mutable");
    let tahoe_base = args
        .iter()
        .position(|a| a == "--tahoe")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
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
    if args.iter().any(|a| a == "--plugin") {
        plugin_bench(dir.path(), &sizes);
        return;
    }
    let root = dir.path();
    let (gateway, mut nodes) = grid(root, EXE, "");
    if mutable {
        mutable_bench(root, &gateway, &nodes, tahoe_base.as_deref());
        return;
    }
    if args.iter().any(|a| a == "--dirs") {
        dirs_bench(root, &gateway, &nodes, tahoe_base.as_deref());
        return;
    }
    if args.iter().any(|a| a == "--web") {
        web_bench(root, &gateway, &mut nodes, tahoe_base.as_deref());
        return;
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
            let seed = size * 1000 + run + u64::from(std::process::id());
            write_random_file(&file, size, seed * 100_000);
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

/// A queen, ten storage nodes and a gateway base directory under `root`:
/// the storage nodes run `exe` with `storage` appended to their tahoe.toml
/// (whose last table is `[storage]`); the queen runs this build's `tahoe`.
/// Returns once every storage node is announced.
fn grid(root: &Path, exe: &str, storage: &str) -> (PathBuf, Nodes) {
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
fn signal_all(pids: &[u32], sig: i32) {
    for &p in pids {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(p as i32, sig);
        }
    }
}

/// One web API call with curl: (seconds as curl measured it, body).
fn curl(args: &[&str]) -> (f64, String) {
    let o = Command::new("curl")
        .args(["-sS", "-f", "-w", "\n%{time_total}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, t) = text.rsplit_once('\n').unwrap();
    (t.trim().parse().unwrap(), body.to_string())
}

/// Seconds from connecting to `http://HOST:PORT/PATH` until the first
/// byte of the response's body (not of its headers, which a gateway may
/// send before it has fetched anything) has arrived; the rest is read and
/// dropped.
fn first_body_byte(url: &str) -> f64 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (mut seen, mut buf, mut first) = (Vec::new(), vec![0u8; 64 << 10], None);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if first.is_none() {
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    seen.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&seen[..end])
                );
                if seen.len() > end + 4 {
                    first = Some(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    first.expect("a body")
}

/// The pids of the running Tahoe-LAFS grid under BASE (`tahoe-grid.sh`).
fn tahoe_pids(tahoe_base: Option<&Path>) -> Vec<u32> {
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

/// Print `| op | ours ms | tahoe ms | ratio |` rows of medians.
fn print_table(ops: &[&str], ours: &[Vec<f64>], theirs: &[Vec<f64>]) {
    println!("| op | ours ms | tahoe ms | ours faster by |");
    println!("|---|---|---|---|");
    for (i, op) in ops.iter().enumerate() {
        let o = median(ours[i].clone()) * 1e3;
        if theirs[i].is_empty() {
            println!("| {op} | {o:.1} | - | - |");
        } else {
            let t = median(theirs[i].clone()) * 1e3;
            println!("| {op} | {o:.1} | {t:.1} | {:.1}x |", t / o);
        }
    }
}

fn dirs_bench(root: &Path, gateway: &Path, nodes: &Nodes, tahoe_base: Option<&Path>) {
    use std::sync::Arc;
    use tahoe_core::client::mutable::key_pool::KeyPool;
    use tahoe_core::client::source::BytesSource;
    use tahoe_core::format::cap::{Cap, DirCap};
    use tahoe_core::format::dirnode::{Metadata, Node, Replace};
    use tahoe_core::format::ssk::MutableFormat;

    const RUNS: usize = 5;
    const BIG: usize = 10_000;
    const POOL: usize = 3;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt
        .block_on(tahoe::client::GridClient::open(gateway))
        .unwrap();
    let dirs = rt.block_on(session.dir_client(KeyPool::new(POOL))).unwrap();
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let tgw = "http://127.0.0.1:23300";
    let wait_pool = || {
        while dirs.mutable.keys.ready() < POOL {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Caps of 10,000 (made-up, well-formed) immutable files.
    let fake_cap = |i: u64| {
        let r = pseudo_random_bytes(50_000 + i, 48);
        format!(
            "URI:CHK:{}:{}:3:10:{}",
            tahoe_core::base32::encode(&r[..16]),
            tahoe_core::base32::encode(&r[16..]),
            1000 + i
        )
    };
    let names: Vec<String> = (0..BIG).map(|i| format!("file-{i:05}")).collect();
    let caps: Vec<String> = (0..BIG as u64).map(fake_cap).collect();
    let small = pseudo_random_bytes(1, 1000);
    let small_file = root.join("small");
    std::fs::write(&small_file, &small).unwrap();
    let ops = [
        "mkdir",
        "add a 1 kB file",
        "list 20 entries",
        "10k: list",
        "10k: add one",
        "10k: remove one",
    ];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    let mut big_cap = None;
    for run in 0..RUNS {
        signal_all(&tahoe_pids, libc::SIGSTOP);
        wait_pool();
        std::thread::sleep(Duration::from_millis(300));
        rt.block_on(async {
            let t = Instant::now();
            let d = dirs.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
            ours[0].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let data = pseudo_random_bytes(60_000 + run as u64, 1000);
            let cap = dirs
                .immutable
                .put(Arc::new(BytesSource(bytes::Bytes::from(data))))
                .await
                .unwrap();
            dirs.add(&d, "small", Node::from_cap(cap), None, Replace::Always)
                .await
                .unwrap();
            ours[1].push(t.elapsed().as_secs_f64());
            for (n, c) in names.iter().zip(&caps).take(19) {
                dirs.add(
                    &d,
                    n,
                    Node::from_cap(c.parse().unwrap()),
                    None,
                    Replace::Always,
                )
                .await
                .unwrap();
            }
            let t = Instant::now();
            let listing = dirs.read(&d).await.unwrap();
            let nodes: Vec<Node> = listing
                .entries()
                .map(|(n, e)| listing.node_of(n, e).unwrap())
                .collect();
            ours[2].push(t.elapsed().as_secs_f64());
            assert_eq!(nodes.len(), 20);
            if run == 0 {
                let children: Vec<(String, Node, Metadata)> = names
                    .iter()
                    .zip(&caps)
                    .map(|(n, c)| {
                        (
                            n.clone(),
                            Node::from_cap(c.parse().unwrap()),
                            Metadata::new(),
                        )
                    })
                    .collect();
                big_cap = Some(dirs.create(MutableFormat::Sdmf, children).await.unwrap());
            }
            let big = big_cap.clone().unwrap();
            let t = Instant::now();
            let listing = dirs.read(&big).await.unwrap();
            let n = listing
                .entries()
                .map(|(n, e)| listing.node_of(n, e).unwrap())
                .collect::<Vec<Node>>()
                .len();
            ours[3].push(t.elapsed().as_secs_f64());
            assert!(n >= BIG);
            let t = Instant::now();
            dirs.add(
                &big,
                "added",
                Node::from_cap(caps[0].parse().unwrap()),
                None,
                Replace::Never,
            )
            .await
            .unwrap();
            ours[4].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            dirs.remove(&big, "added").await.unwrap();
            ours[5].push(t.elapsed().as_secs_f64());
        });
        if tahoe_base.is_some() {
            wait_pool();
            signal_all(&ours_pids, libc::SIGSTOP);
            signal_all(&tahoe_pids, libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(500));
            let (t, d) = curl(&["-X", "POST", &format!("{tgw}/uri?t=mkdir")]);
            assert!(d.starts_with("URI:DIR2:"), "{d}");
            theirs[0].push(t);
            let data = root.join("tahoe-small");
            std::fs::write(&data, pseudo_random_bytes(70_000 + run as u64, 1000)).unwrap();
            theirs[1].push(
                curl(&[
                    "-T",
                    data.to_str().unwrap(),
                    &format!("{tgw}/uri/{d}/small"),
                ])
                .0,
            );
            for (n, c) in names.iter().zip(&caps).take(19) {
                curl(&[
                    "-X",
                    "PUT",
                    "--data-binary",
                    c,
                    &format!("{tgw}/uri/{d}/{n}?t=uri"),
                ]);
            }
            let (t, json) = curl(&[&format!("{tgw}/uri/{d}?t=json")]);
            assert!(json.contains("file-00018"), "{json}");
            theirs[2].push(t);
            static TAHOE_BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let tbig = TAHOE_BIG.get_or_init(|| {
                let mut children = serde_json::Map::new();
                for (n, c) in names.iter().zip(&caps) {
                    children.insert(n.clone(), serde_json::json!(["filenode", {"ro_uri": c}]));
                }
                let body = root.join("tahoe-children.json");
                std::fs::write(&body, serde_json::to_vec(&children).unwrap()).unwrap();
                let (_, cap) = curl(&[
                    "-X",
                    "POST",
                    "--data-binary",
                    &format!("@{}", body.display()),
                    &format!("{tgw}/uri?t=mkdir-with-children"),
                ]);
                assert!(cap.starts_with("URI:DIR2:"), "{cap}");
                cap
            });
            let (t, json) = curl(&[&format!("{tgw}/uri/{tbig}?t=json")]);
            assert!(json.contains("file-09999"));
            theirs[3].push(t);
            theirs[4].push(
                curl(&[
                    "-X",
                    "PUT",
                    "--data-binary",
                    &caps[0],
                    &format!("{tgw}/uri/{tbig}/added?t=uri"),
                ])
                .0,
            );
            theirs[5].push(curl(&["-X", "DELETE", &format!("{tgw}/uri/{tbig}/added")]).0);
            signal_all(&ours_pids, libc::SIGCONT);
        }
    }
    signal_all(&tahoe_pids, libc::SIGCONT);
    println!(
        "directories (SDMF, 3-of-10, 10 storage node processes; ours through a client keeping its \
         connections and a pool of {POOL} keys; Tahoe-LAFS 1.20 through its web API, curl's \
         time_total; the 10k directory holds CHK caps), median of {RUNS}:"
    );
    print_table(&ops, &ours, &theirs);
    // Whole `tahoe` processes on the 10,000-entry directory: time and
    // peak RSS of a listing, a link and an unlink.
    let big = Cap::Dir(big_cap.unwrap());
    let _: &DirCap = match &big {
        Cap::Dir(d) => d,
        _ => unreachable!(),
    };
    let g = gateway.to_str().unwrap();
    let target = format!("{big}/via-cli");
    for (what, args) in [
        (
            "tahoe ls --json (10k entries)",
            vec!["ls", "-d", g, "--json", &big.to_string()],
        ),
        (
            "tahoe put 1 kB into it",
            vec!["put", "-d", g, small_file.to_str().unwrap(), &target],
        ),
        ("tahoe rm from it", vec!["rm", "-d", g, &target]),
    ] {
        let (t, rss, _, _) = timed(&args);
        println!("{what}: {:.0} ms, peak RSS {} MiB", t * 1e3, rss / 1024);
    }
}

fn mutable_bench(root: &Path, gateway: &Path, nodes: &Nodes, tahoe_base: Option<&Path>) {
    use std::sync::Arc;
    use tahoe_core::client::mutable::key_pool::KeyPool;
    use tahoe_core::client::source::BytesSource;
    use tahoe_core::format::ssk::MutableFormat;

    const RUNS: usize = 5;
    const POOL: usize = 2;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt
        .block_on(tahoe::client::GridClient::open(gateway))
        .unwrap();
    let client = rt
        .block_on(session.mutable_client(KeyPool::new(POOL)))
        .unwrap();
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let tgw = "http://127.0.0.1:23300";
    let ops = ["create", "read", "overwrite", "write 5 B at offset"];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let wait_pool = || {
        while client.keys.ready() < POOL {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for run in 0..RUNS {
        let a = pseudo_random_bytes(7_000 + run as u64, 1_000_000);
        let b = pseudo_random_bytes(8_000 + run as u64, 1_000_000);
        signal_all(&tahoe_pids, libc::SIGSTOP);
        wait_pool();
        std::thread::sleep(Duration::from_millis(300));
        rt.block_on(async {
            let t = Instant::now();
            let cap = client
                .create(
                    MutableFormat::Mdmf,
                    Arc::new(BytesSource(bytes::Bytes::from(a.clone()))),
                )
                .await
                .unwrap();
            ours[0].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let mut out = Vec::new();
            client
                .read(&cap.read_cap(), 0..u64::MAX, &mut out)
                .await
                .unwrap();
            ours[1].push(t.elapsed().as_secs_f64());
            assert!(out == a);
            let t = Instant::now();
            client
                .overwrite(&cap, Arc::new(BytesSource(bytes::Bytes::from(b.clone()))))
                .await
                .unwrap();
            ours[2].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            client
                .write_at(&cap, 500_000, bytes::Bytes::from_static(b"hello"))
                .await
                .unwrap();
            ours[3].push(t.elapsed().as_secs_f64());
            let mut out = Vec::new();
            client
                .read(&cap.read_cap(), 500_000..500_005, &mut out)
                .await
                .unwrap();
            assert_eq!(out, b"hello");
        });
        if tahoe_base.is_some() {
            // Our pool refills before Tahoe is measured, too.
            wait_pool();
            signal_all(&ours_pids, libc::SIGSTOP);
            signal_all(&tahoe_pids, libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(500));
            let fa = root.join("tahoe-a");
            let fb = root.join("tahoe-b");
            let five = root.join("five");
            std::fs::write(&fa, &a).unwrap();
            std::fs::write(&fb, &b).unwrap();
            std::fs::write(&five, b"hello").unwrap();
            let (t, cap) = curl(&[
                "-T",
                fa.to_str().unwrap(),
                &format!("{tgw}/uri?format=mdmf"),
            ]);
            assert!(cap.starts_with("URI:MDMF:"), "{cap}");
            theirs[0].push(t);
            let got = root.join("tahoe-got");
            let (t, _) = curl(&["-o", got.to_str().unwrap(), &format!("{tgw}/uri/{cap}")]);
            assert!(std::fs::read(&got).unwrap() == a);
            theirs[1].push(t);
            theirs[2].push(curl(&["-T", fb.to_str().unwrap(), &format!("{tgw}/uri/{cap}")]).0);
            theirs[3].push(
                curl(&[
                    "-T",
                    five.to_str().unwrap(),
                    &format!("{tgw}/uri/{cap}?offset=500000"),
                ])
                .0,
            );
            signal_all(&ours_pids, libc::SIGCONT);
        }
    }
    signal_all(&tahoe_pids, libc::SIGCONT);
    println!(
        "mutable (MDMF, 1 MB, 3-of-10, 10 storage node processes; ours through a client keeping its \
         connections and a pool of {POOL} keys; Tahoe-LAFS 1.20 through its web API, curl's time_total), median of {RUNS}:"
    );
    print_table(&ops, &ours, &theirs);
    if std::env::args().any(|a| a == "--quick") {
        return;
    }
    // 1 GiB MDMF through the command line: time and the gateway's peak RSS.
    let file = root.join("big");
    write_random_file(&file, 1024, 9_000_000);
    let (t, rss, _, cap) = timed(&[
        "put",
        "--basedir",
        gateway.to_str().unwrap(),
        "--format",
        "mdmf",
        file.to_str().unwrap(),
    ]);
    println!(
        "1 GiB MDMF: tahoe put --format mdmf {:.1} s ({:.1} MB/s), peak RSS {} MiB",
        t,
        1073.741824 / t,
        rss / 1024
    );
    let (t, rss, _, _) = timed(&[
        "get",
        "--basedir",
        gateway.to_str().unwrap(),
        &cap,
        "/dev/null",
    ]);
    println!(
        "1 GiB MDMF: tahoe get {:.1} s ({:.1} MB/s), peak RSS {} MiB",
        t,
        1073.741824 / t,
        rss / 1024
    );
    let _ = std::fs::remove_file(&file);
}

/// The web gateways side by side: the same curl calls against ours and
/// (with `tahoe_base`) Tahoe-LAFS's, in turns, the other grid frozen.
fn web_bench(root: &Path, gateway: &Path, nodes: &mut Nodes, tahoe_base: Option<&Path>) {
    const RUNS: usize = 5;
    const BIG: usize = 10_000;
    const AT_ONCE: usize = 100;
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
    let ogw = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("curl")
        .args(["-sf", &format!("{ogw}/?t=json")])
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
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let mut grids = vec![("ours", ogw, ours_pids.clone())];
    if tahoe_base.is_some() {
        grids.push((
            "tahoe",
            "http://127.0.0.1:23300".to_string(),
            tahoe_pids.clone(),
        ));
    }
    let ops = [
        "first byte of 1 MiB",
        "first byte of 128 MiB",
        "10k entries: t=json",
        "10k entries: first HTML page",
        "100 uploads of 1 kB at once",
    ];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); ops.len()]; grids.len()];
    let put = |gw: &str, file: &Path| -> String {
        let (_, cap) = curl(&["-T", file.to_str().unwrap(), &format!("{gw}/uri")]);
        assert!(cap.starts_with("URI:"), "{cap}");
        cap
    };
    // Per grid, made once: a 128 MiB file and a directory of 10,000 entries.
    let mut children = serde_json::Map::new();
    for i in 0..BIG as u64 {
        let r = pseudo_random_bytes(50_000 + i, 48);
        let cap = format!(
            "URI:CHK:{}:{}:3:10:{}",
            tahoe_core::base32::encode(&r[..16]),
            tahoe_core::base32::encode(&r[16..]),
            1000 + i
        );
        children.insert(
            format!("file-{i:05}"),
            serde_json::json!(["filenode", {"ro_uri": cap}]),
        );
    }
    let children_file = root.join("web-children.json");
    std::fs::write(&children_file, serde_json::to_vec(&children).unwrap()).unwrap();
    let freeze_others = |g: usize| {
        for (i, (_, _, pids)) in grids.iter().enumerate() {
            signal_all(pids, if i == g { libc::SIGCONT } else { libc::SIGSTOP });
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut made: Vec<(String, String)> = Vec::new();
    for (g, (_, gw, _)) in grids.iter().enumerate() {
        freeze_others(g);
        // Fresh bytes per grid: CHK is convergent.
        let f = root.join(format!("web-big-{g}"));
        write_random_file(&f, 128, 78_000_000 + g as u64 * 1000);
        let big = put(gw, &f);
        let (_, dir) = curl(&[
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", children_file.display()),
            &format!("{gw}/uri?t=mkdir-with-children"),
        ]);
        assert!(dir.starts_with("URI:DIR2:"), "{dir}");
        made.push((big, dir));
    }
    let small_files: Vec<PathBuf> = (0..AT_ONCE)
        .map(|i| root.join(format!("web-small-{i}")))
        .collect();
    for run in 0..RUNS {
        for (g, (_, gw, _)) in grids.iter().enumerate() {
            freeze_others(g);
            let (big, dir) = &made[g];
            let r = &mut results[g];
            let one = root.join("web-one");
            std::fs::write(
                &one,
                pseudo_random_bytes(90_000 + (run * 10 + g) as u64, 1 << 20),
            )
            .unwrap();
            let cap = put(gw, &one);
            r[0].push(first_body_byte(&format!("{gw}/uri/{cap}")));
            r[1].push(first_body_byte(&format!("{gw}/uri/{big}")));
            let (t, json) = curl(&[&format!("{gw}/uri/{dir}?t=json")]);
            assert!(json.contains("file-09999"));
            r[2].push(t);
            let (t, html) = curl(&["-H", "Accept: text/html", &format!("{gw}/uri/{dir}")]);
            assert!(html.contains("file-00000"));
            r[3].push(t);
            for (i, f) in small_files.iter().enumerate() {
                let seed = 100_000 + ((run * 10 + g) * AT_ONCE + i) as u64;
                std::fs::write(f, pseudo_random_bytes(seed, 1000)).unwrap();
            }
            let t = Instant::now();
            let children: Vec<Child> = small_files
                .iter()
                .map(|f| {
                    Command::new("curl")
                        .args([
                            "-sS",
                            "-f",
                            "-o",
                            "/dev/null",
                            "-T",
                            f.to_str().unwrap(),
                            &format!("{gw}/uri"),
                        ])
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success(), "a concurrent upload failed");
            }
            r[4].push(t.elapsed().as_secs_f64());
        }
    }
    for (_, _, pids) in &grids {
        signal_all(pids, libc::SIGCONT);
    }
    println!(
        "web gateways (3-of-10, 10 storage node processes, a gateway with storage off; the same \
         HTTP calls against both; first byte: from connecting to the first byte of the body; \
         the rest curl's time_total, or the wall time of 100 curl processes), median of {RUNS}:"
    );
    let theirs = results
        .get(1)
        .cloned()
        .unwrap_or_else(|| vec![Vec::new(); ops.len()]);
    print_table(&ops, &results[0], &theirs);
}

/// What the plugin ABI costs a whole grid: ten storage nodes keep their
/// shares through the example `dirstore` backend loaded from its library
/// (`[plugins] load`), ten others through the same code compiled in
/// (`examples/static-backend`, `tahoe_core::plugin::loader::linked`). Uploads and
/// downloads through `tahoe put` / `tahoe get` on each grid in turns, the
/// other grid frozen (SIGSTOP), each grid first in every other run;
/// medians of seven, and the ABI's cost as the median of the runs' paired
/// ratios (linked-in rate / loaded rate - 1).
fn plugin_bench(root: &Path, sizes: &[u64]) {
    const RUNS: u64 = 7;
    let lib =
        tahoe_core::testing::built_library("tahoe-example-dirstore", "tahoe_example_dirstore");
    let linked_exe = tahoe_core::testing::built(
        &["-p", "tahoe", "--example", "static-backend"],
        "examples/static-backend",
    );
    let section = "backend = \"dirstore\"\n\n[storage.dirstore]\npath = \"dirstore-shares\"\n";
    let loaded = format!(
        "{section}\n[plugins]\nload = [{:?}]\n",
        lib.to_str().unwrap()
    );
    let grids = [
        grid(&root.join("loaded"), EXE, &loaded),
        grid(&root.join("linked"), linked_exe.to_str().unwrap(), section),
    ];
    let pids: Vec<Vec<u32>> = grids
        .iter()
        .map(|(_, n)| n.0.iter().map(Child::id).collect())
        .collect();
    println!(
        "dirstore through the plugin ABI vs linked in: two grids of 10 storage nodes (processes, TLS on 127.0.0.1), tahoe put/get, 3-of-10, the other grid frozen, median of 7"
    );
    println!(
        "| size | upload loaded | upload linked in | ABI cost (paired) | download loaded | download linked in | ABI cost (paired) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &size in sizes {
        let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for run in 0..RUNS {
            let file = root.join("input");
            write_random_file(&file, size, (size * 1000 + run) * 100_000);
            // Each grid goes first in every other run.
            let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for g in order {
                let gateway = &grids[g].0;
                signal_all(&pids[1 - g], libc::SIGSTOP);
                let gw = gateway.to_str().unwrap();
                let (t, _, _, cap) = timed(&["put", "--basedir", gw, file.to_str().unwrap()]);
                rates[g][0].push((size << 20) as f64 / 1e6 / t);
                let (t, _, _, _) = timed(&["get", "--basedir", gw, &cap, "/dev/null"]);
                rates[g][1].push((size << 20) as f64 / 1e6 / t);
                signal_all(&pids[1 - g], libc::SIGCONT);
            }
        }
        let m = |g: usize, op: usize| median(rates[g][op].clone());
        // Paired by run (the two grids measured back to back), so a slow
        // spell of the machine shows in both sides of one ratio.
        let cost = |op: usize| {
            let r = rates[0][op].iter().zip(&rates[1][op]);
            (median(r.map(|(l, n)| n / l).collect()) - 1.0) * 100.0
        };
        println!(
            "| {size} MiB | {:.1} MB/s | {:.1} MB/s | {:+.1}% | {:.1} MB/s | {:.1} MB/s | {:+.1}% |",
            m(0, 0),
            m(1, 0),
            cost(0),
            m(0, 1),
            m(1, 1),
            cost(1)
        );
        let runs = |g: usize, op: usize| {
            rates[g][op]
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "|   runs | {} | {} | | {} | {} | |",
            runs(0, 0),
            runs(1, 0),
            runs(0, 1),
            runs(1, 1)
        );
    }
    // Both grids stored through dirstore, in its own layout.
    for g in ["loaded", "linked"] {
        let shares = root.join(g).join("node0/dirstore-shares");
        assert!(
            shares.is_dir(),
            "no dirstore shares at {}",
            shares.display()
        );
    }
}
