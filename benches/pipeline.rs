//! Throughput and peak memory of the immutable upload and download
//! pipelines, in process: ten storage servers over the memory transport,
//! 3-of-10, 1 MiB segments.
//!
//! Run: `cargo bench --bench pipeline` (sizes in MiB as arguments, default
//! `128 1024`). Each measurement runs in a child process so its peak RSS is
//! its own; the peak is reset between upload and download through
//! /proc/self/clear_refs. Three runs per size:
//! - `null`: shares computed and dropped: the pipeline alone;
//! - `memory`: shares stored in the memory backend (the process then holds
//!   3.3 bytes of fresh RAM per byte uploaded, so its RSS is not the
//!   pipeline's and the kernel's page zeroing shows in the upload time);
//! - `fs`: shares in files under the temp dir: RSS is the pipeline's own.
//!
//! Before and after, it prints how fast the machine gives a process fresh
//! memory (`pipeline touch`): the memory backend's uploads are bounded by it.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use tahoe_core::client::source::FileSource;
use tahoe_core::kinds::storage::StorageBackend;
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_core::testing::pseudo_random_bytes;
use testkit::measure::{cpu_seconds, peak_rss_kib};

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn child(size_mib: u64, backend: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..size_mib {
            f.write_all(&pseudo_random_bytes(i, 1 << 20)).unwrap();
        }
    }
    rt.block_on(async {
        let mut grid = testkit::MemGrid::new(10).await;
        if backend == "fs" {
            // Rebuild the servers over fs backends in the temp dir.
            grid = testkit::MemGrid::with_backends((0..10).map(|i| {
                let b: Arc<dyn StorageBackend> =
                    Arc::new(tahoe_storage_fs::FsBackend::open(dir.path().join(format!("s{i}"))).unwrap());
                Arc::new(StorageServer::new(b, ServerConfig::default()))
            }))
            .await;
        }
        let uploader = grid.uploader(3, 10, 1 << 20);
        if backend == "null" {
            // The pipeline alone: shares are computed and dropped.
            let sink = tahoe_core::client::immutable::sink::NullSink { n: 10 };
            let cpu0 = cpu_seconds("self");
            let t = Instant::now();
            uploader.upload(Arc::new(FileSource::open(&path).unwrap()), &sink).await.unwrap();
            let up = t.elapsed().as_secs_f64();
            let cores = (cpu_seconds("self") - cpu0) / up;
            let mb = (size_mib << 20) as f64 / 1e6;
            println!("{size_mib:>5} MiB  null    upload {:>7.1} MB/s  {cores:.2} cores  peak RSS {:>5} MiB", mb / up, peak_rss_kib("self") / 1024);
            return;
        }
        let sink = grid.sink(3, 10);
        reset_peak_rss();
        let cpu0 = cpu_seconds("self");
        let t = Instant::now();
        let cap = uploader.upload(Arc::new(FileSource::open(&path).unwrap()), &sink).await.unwrap();
        let up = t.elapsed().as_secs_f64();
        let up_rss = peak_rss_kib("self");
        let up_cores = (cpu_seconds("self") - cpu0) / up;
        reset_peak_rss();
        let cpu0 = cpu_seconds("self");
        let t = Instant::now();
        let mut out = tokio::io::sink();
        let report = grid
            .downloader()
            .download(testkit::vectors::chk(&cap), &grid.refs(), 0..u64::MAX, &mut out)
            .await
            .unwrap();
        let down = t.elapsed().as_secs_f64();
        let down_rss = peak_rss_kib("self");
        let down_cores = (cpu_seconds("self") - cpu0) / down;
        assert_eq!(report.bytes, size_mib << 20);
        let mb = (size_mib << 20) as f64 / 1e6;
        println!(
            "{size_mib:>5} MiB  {backend:<6}  upload {:>7.1} MB/s  {up_cores:.2} cores  peak RSS {:>5} MiB   download {:>7.1} MB/s  {down_cores:.2} cores  peak RSS {:>5} MiB",
            mb / up,
            up_rss / 1024,
            mb / down,
            down_rss / 1024
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("touch") {
        touch_fresh_memory(args.get(1).map_or("", String::as_str));
        return;
    }
    if args.first().map(String::as_str) == Some("child") {
        child(args[1].parse().unwrap(), &args[2]);
        return;
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![128, 1024]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    println!("in-process pipeline, 10 servers, 3-of-10, 1 MiB segments, crs + aes-128-ctr");
    let touch = |label: &str| {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["touch", label])
            .status()
            .unwrap();
        assert!(status.success());
    };
    touch("before");
    for size in sizes {
        for backend in ["null", "memory", "fs"] {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["child", &size.to_string(), backend])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    touch("after");
}

/// How fast this machine hands a process fresh memory: write 1 GiB of
/// never-touched pages, in a process of its own. Storing shares in the
/// memory backend (3.3 bytes per byte uploaded) pays exactly this, so the
/// figure is printed beside the uploads it bounds. On a VM whose freed pages
/// go back to the host, it is slow and varies from run to run.
fn touch_fresh_memory(label: &str) {
    const SIZE: usize = 1 << 30;
    let t = Instant::now();
    let v = vec![1u8; SIZE];
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(&v);
    println!(
        "fresh memory ({label}): 1 GiB first touched at {:.2} GB/s ({:.2} s)",
        SIZE as f64 / secs / 1e9,
        secs
    );
}
