//! The default mode: uploads and downloads through `tahoe put` / `tahoe
//! get`, the processes' peak RSS and CPU, and the idle grid's CPU.

use std::path::Path;
use std::time::Duration;

use tahoe_core::testing::proc_status_kib;
use testkit::measure::cpu_ticks;
use testkit::median;

use crate::setup::{Nodes, timed, write_random_file};

/// Per size (MiB), the median upload and download rate of three runs with
/// fresh random data each, and the cores they used; then the peak RSS of
/// the gateway, the storage nodes and the queen, and 20 s of idle CPU.
pub fn run(root: &Path, gateway: &Path, nodes: &Nodes, sizes: &[u64]) {
    println!(
        "grid: queen + 10 storage nodes (processes, TLS on 127.0.0.1), gateway = tahoe put/get, 3-of-10, 1 MiB segments"
    );
    let mut gateway_peak = 0;
    for &size in sizes {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let (mut gw_cpu, mut nodes_cpu, mut wall) = (0.0, 0.0, 0.0);
        for run in 0..3 {
            let file = root.join("input");
            let seed = size * 1000 + run + u64::from(std::process::id());
            write_random_file(&file, size, seed * 100_000);
            let ticks0: u64 = nodes.0.iter().map(|c| cpu_ticks(&c.id().to_string())).sum();
            let (t, rss, cpu, cap) = timed(&[
                "put",
                "--basedir",
                gateway.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
            let ticks1: u64 = nodes.0.iter().map(|c| cpu_ticks(&c.id().to_string())).sum();
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
        .map(|c| proc_status_kib(&c.id().to_string(), "VmHWM:"))
        .max()
        .unwrap_or(0);
    println!(
        "peak RSS: gateway {} MiB, storage node (max of 10) {} MiB, queen {} MiB",
        gateway_peak / 1024,
        storage_peak / 1024,
        proc_status_kib(&nodes.0[0].id().to_string(), "VmHWM:") / 1024
    );
    let before: u64 = nodes.0.iter().map(|c| cpu_ticks(&c.id().to_string())).sum();
    let secs = 20;
    std::thread::sleep(Duration::from_secs(secs));
    let after: u64 = nodes.0.iter().map(|c| cpu_ticks(&c.id().to_string())).sum();
    println!(
        "idle grid (11 processes, {secs} s): {:.2}% of one core",
        (after - before) as f64 / 100.0 / secs as f64 * 100.0
    );
}
