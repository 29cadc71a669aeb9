//! `--keeping`: what a grid that keeps itself costs.
//!
//! 1. The lease crawler over one storage node's 1,000,000 shares (the fs
//!    backend on the disk under `target/`, not /dev/shm): a whole cycle
//!    unpaced (wall and CPU), then the paced crawler at its default 10%
//!    budget for a minute (the share of a core it took).
//! 2. Upload and download through the grid with every node's crawler
//!    walking 50,000 planted shares without pause (a 1 s cycle interval),
//!    and with the crawlers off, in turns (on, off, on, off; three runs
//!    each): medians and their ratio.
//! 3. Maintenance of a 10,000-file tree (100 directories of 100 files) by
//!    the gateway node: the time of a whole cycle, checks only and with
//!    a 1% audit (median of three cycles each).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tahoe_core::kinds::storage::StorageIndex;
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_storage_fs::FsBackend;
use testkit::median;

use crate::setup::{EXE, Nodes, timed, write_random_file};

fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    #[allow(unsafe_code)]
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// `sis` storage indexes of `per` shares each (100 bytes) with one live
/// lease, in the fs backend's layout under `root`.
fn plant(root: &Path, sis: u32, per: u8, salt: u8) {
    let expires = tahoe_core::time::Clock::system().now() + 30 * 86_400;
    let lease = [vec![1u8; 64], expires.to_be_bytes().to_vec()].concat();
    for i in 0..sis {
        let mut si = [salt; 16];
        si[..4].copy_from_slice(&i.to_be_bytes());
        let name = StorageIndex(si).to_string();
        let dir = root.join("shares").join(&name[..2]).join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        for s in 0..per {
            std::fs::write(dir.join(s.to_string()), [s; 100]).unwrap();
        }
        std::fs::write(dir.join("leases"), &lease).unwrap();
    }
}

fn crawler_alone() {
    let disk = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = tempfile::tempdir_in(&disk).unwrap();
    let root = dir.path().join("storage");
    let t = Instant::now();
    plant(&root, 250_000, 4, 0x11);
    println!(
        "crawler: 1,000,000 shares (250,000 storage indexes of 4) planted on disk in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = StorageServer::new(
            Arc::new(FsBackend::open(&root).unwrap()),
            ServerConfig::default(),
        );
        let (t, cpu) = (Instant::now(), cpu_secs());
        let c = server.crawl_cycle().await.unwrap();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
        assert_eq!(c.counts.shares.total(), 1_000_000);
        println!(
            "crawler: one whole cycle unpaced: {wall:.1} s wall, {cpu:.1} s CPU ({:.1} µs of CPU per share); paced at 9%: about {:.0} min a cycle",
            cpu, // seconds per million = microseconds per share
            wall / 0.09 / 60.0
        );
        let state = dir.path().join("crawler/state.json");
        let paced = {
            let s = server.clone();
            tokio::spawn(async move { s.run_crawler(state).await })
        };
        // Measured from a few pages in (the first page has no rest before
        // it: a short window would count it against the budget), for a
        // minute.
        let so_far = |s: &StorageServer| s.crawler_state().current.map_or(0, |c| c.counts.shares.total());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (t, cpu, before) = (Instant::now(), cpu_secs(), so_far(&server));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
        let done = so_far(&server) - before;
        paced.abort();
        println!(
            "crawler: paced (default budget, 9% of the wall clock): {:.1}% of one core over {wall:.0} s, {done} shares examined ({:.0} shares/s)",
            cpu / wall * 100.0,
            done as f64 / wall
        );
    });
}

/// Kill the storage nodes (`nodes.0[1..=10]`) and start them again with
/// `env`; wait a moment for them to listen and announce.
fn restart_storage(root: &Path, nodes: &mut Nodes, env: &[(&str, &str)]) {
    // Each comes back at the address it has now (nodes made without
    // `--listen` take a new port each start, and a new address takes a
    // while to reach clients: not what this measures).
    let addresses: Vec<String> = (0..10)
        .map(|i| {
            let status = std::fs::read(root.join(format!("node{i}/status.json"))).unwrap();
            let v: Value = serde_json::from_slice(&status).unwrap();
            let a = v["address"].as_str().unwrap();
            a.rsplit_once('@').map_or(a, |(_, hp)| hp).to_string()
        })
        .collect();
    for i in 1..=10 {
        let _ = nodes.0[i].kill();
        let _ = nodes.0[i].wait();
        let d = root.join(format!("node{}", i - 1));
        let _ = std::fs::remove_file(d.join("node.pid"));
        let _ = std::fs::remove_file(d.join("status.json"));
        let log = std::fs::File::create(d.join("bench.log")).unwrap();
        let mut cmd = Command::new(EXE);
        cmd.args(["run", "--basedir", d.to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("TAHOE_TRANSPORT__LISTEN", &addresses[i - 1]);
        nodes.0[i] = cmd.spawn().unwrap();
    }
    // Each has written its status, and the queen has heard from them.
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..10 {
        let d = root.join(format!("node{i}"));
        while !d.join("status.json").exists() {
            assert!(
                Instant::now() < deadline,
                "node{i} did not come back: {}",
                std::fs::read_to_string(d.join("bench.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
}

fn throughput_with_crawlers(root: &Path, gateway: &Path, nodes: &mut Nodes) {
    for i in 0..10 {
        plant(
            &root.join(format!("node{i}/storage")),
            12_500,
            4,
            0x20 + i as u8,
        );
    }
    let size = 64u64;
    let (mut on, mut off) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for round in 0..4 {
        let crawling = round % 2 == 0;
        restart_storage(
            root,
            nodes,
            &[(
                "TAHOE_STORAGE__CRAWLER__ENABLED",
                if crawling { "true" } else { "false" },
            )],
        );
        let into = if crawling { &mut on } else { &mut off };
        for run in 0..3 {
            let file = root.join("input");
            write_random_file(&file, size, (round * 10 + run + 1) * 7_000_000);
            let (t, _, _, cap) = timed(&[
                "put",
                "--basedir",
                gateway.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
            into.0.push((size << 20) as f64 / 1e6 / t);
            let (t, _, _, _) = timed(&[
                "get",
                "--basedir",
                gateway.to_str().unwrap(),
                &cap,
                "/dev/null",
            ]);
            into.1.push((size << 20) as f64 / 1e6 / t);
        }
    }
    let (up_on, down_on, up_off, down_off) =
        (median(on.0), median(on.1), median(off.0), median(off.1));
    println!(
        "crawlers walking 50,000 shares on each node without pause vs off, {size} MiB, medians of 6 runs in turns:\n  upload {up_on:.1} vs {up_off:.1} MB/s ({:.2}x)   download {down_on:.1} vs {down_off:.1} MB/s ({:.2}x)",
        up_on / up_off,
        down_on / down_off
    );
}

/// The gateway node run with `env`, its web port; stop it with the
/// returned child.
fn run_gateway(gateway: &Path, env: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = tahoe_core::testing::free_port();
    let _ = std::fs::remove_file(gateway.join("node.pid"));
    let mut cmd = Command::new(EXE);
    cmd.args(["run", "--basedir", gateway.to_str().unwrap()])
        .env("TAHOE_WEB__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let (status, _, body) = if listening {
            testkit::http(port, "GET", "/?t=json", &[], b"")
        } else {
            (0, Default::default(), Vec::new())
        };
        if status == 200
            && serde_json::from_slice::<Value>(&body)
                .map(|v| v["servers"].as_array().map_or(0, Vec::len) >= 10)
                .unwrap_or(false)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    (child, port)
}

fn maintenance_of_a_tree(gateway: &Path) {
    let (mut child, port) = run_gateway(gateway, &[("TAHOE_MAINTENANCE__ENABLED", "false")]);
    let t = Instant::now();
    let mut dirs = serde_json::Map::new();
    for d in 0..100 {
        let mut children = serde_json::Map::new();
        for f in 0..100 {
            let data = tahoe_core::testing::pseudo_random_bytes(d * 1000 + f + 99, 1000);
            let (status, _, cap) = testkit::http(port, "PUT", "/uri", &[], &data);
            assert_eq!(status, 200);
            let cap = String::from_utf8(cap).unwrap();
            children.insert(
                format!("f{f}"),
                serde_json::json!(["filenode", {"ro_uri": cap}]),
            );
        }
        let body = serde_json::to_vec(&Value::Object(children)).unwrap();
        let (status, _, cap) =
            testkit::http(port, "POST", "/uri?t=mkdir-with-children", &[], &body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&cap));
        let cap = String::from_utf8(cap).unwrap();
        dirs.insert(
            format!("d{d}"),
            serde_json::json!(["dirnode", {"rw_uri": cap}]),
        );
    }
    let body = serde_json::to_vec(&Value::Object(dirs)).unwrap();
    let (status, _, root_cap) =
        testkit::http(port, "POST", "/uri?t=mkdir-with-children", &[], &body);
    assert_eq!(status, 200);
    let root_cap = String::from_utf8(root_cap).unwrap();
    println!(
        "maintenance: a tree of 10,000 files in 100 directories made in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
    std::fs::write(
        gateway.join("private/aliases"),
        format!("tahoe: {root_cap}\n"),
    )
    .unwrap();
    for audit in ["0", "0.01"] {
        let _ = std::fs::remove_dir_all(gateway.join("maintenance"));
        let (mut child, _) = run_gateway(
            gateway,
            &[
                ("TAHOE_MAINTENANCE__INTERVAL", "1"),
                ("TAHOE_MAINTENANCE__JITTER", "0"),
                ("TAHOE_MAINTENANCE__AUDIT", audit),
                ("TAHOE_MAINTENANCE__MAX_OBJECTS_PER_SEC", "1000000"),
                ("TAHOE_MAINTENANCE__MAX_BYTES_PER_SEC", "1000000000000"),
            ],
        );
        let state = gateway.join("maintenance/state.json");
        let deadline = Instant::now() + Duration::from_secs(1800);
        let history = loop {
            let h: Vec<Value> = std::fs::read(&state)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["history"].as_array().cloned())
                .unwrap_or_default();
            if h.len() >= 3 {
                break h;
            }
            assert!(Instant::now() < deadline, "three cycles did not finish");
            std::thread::sleep(Duration::from_millis(500));
        };
        let _ = child.kill();
        let _ = child.wait();
        let secs: Vec<f64> = history
            .iter()
            .map(|c| {
                (c["finished_at"].as_u64().unwrap() - c["started_at"].as_u64().unwrap()) as f64
            })
            .collect();
        let c = &history[0];
        assert_eq!(c["objects_checked"], 10_101, "{c:#}");
        println!(
            "maintenance of 10,101 objects, audit {audit}: {:.0} s a cycle (median of {secs:?}; {:.0} objects/s), {} audited, {} leases renewed",
            median(secs.clone()),
            10_101.0 / median(secs.clone()).max(1.0),
            c["objects_audited"],
            c["leases_renewed"]
        );
    }
}

/// The three measurements, in one grid (the crawler alone needs none).
/// `only`: one of `crawler`, `throughput`, `maintenance`, or all.
pub fn run(root: &Path, gateway: &Path, nodes: &mut Nodes, only: Option<&str>) {
    let part = |name: &str| only.is_none_or(|o| o == name);
    if part("crawler") {
        crawler_alone();
    }
    if part("throughput") {
        throughput_with_crawlers(root, gateway, nodes);
    }
    if part("maintenance") {
        maintenance_of_a_tree(gateway);
    }
}
