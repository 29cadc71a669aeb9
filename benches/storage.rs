//! Storage backends side by side.
//!
//! 1. What the plugin ABI costs: the example `dirstore` backend loaded
//!    from its shared library (through the C ABI of `tahoe-api`) against
//!    the very same code linked in (`tahoe_core::plugin::loader::linked`, which
//!    calls it on the blocking pool the same way but without the ABI).
//!    Two measures: the
//!    storage conformance suite's run time, and share throughput (64
//!    shares of 1 MiB written in four pieces and sealed, then read back in
//!    128 KiB reads), on tmpfs.
//! 2. The `s3` backend against a local S3 server (moto's, see
//!    `tahoe_storage_s3::testing`) next to the `fs` backend, with the same
//!    throughput measure.
//!
//! Each in turns, five rounds, medians. Run: `cargo bench --bench
//! storage` (after `make s3-deps`).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tahoe_core::error::Result;
use tahoe_core::kinds::storage::{ShareKind, StorageBackend, StorageIndex};
use tahoe_core::plugin::registry::{PluginContext, PluginKind, Registry};

/// The example's backend from its library (`lib`), or linked in
/// (`tahoe_core::plugin::loader::linked`: the same code on the blocking pool with
/// the same host checks, no C ABI).
fn open(lib: Option<&Path>, dir: &Path) -> Result<Arc<dyn StorageBackend>> {
    std::fs::create_dir_all(dir).unwrap();
    match lib {
        Some(lib) => tahoe_core::plugin::loader::open_storage(lib, "", dir),
        None => {
            let mut r = Registry::new();
            tahoe_core::plugin::loader::linked::register_storage::<tahoe_example_dirstore::DirStore>(
                &mut r,
            )?;
            r.storage(
                "dirstore",
                &PluginContext::empty(PluginKind::Storage, "dirstore", dir),
            )
        }
    }
}

/// Seconds for 64 shares of 1 MiB written and read back; MB/s.
async fn throughput(b: &dyn StorageBackend, round: u8) -> f64 {
    const SHARES: u8 = 64;
    const SIZE: usize = 1 << 20;
    let data = Bytes::from(tahoe_core::testing::pseudo_random_bytes(
        u64::from(round),
        SIZE,
    ));
    let t = Instant::now();
    for n in 0..SHARES {
        let si = StorageIndex([round, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        let mut w = b.create(&si, 0, SIZE as u64).await.unwrap();
        for piece in 0..4 {
            let (a, z) = (piece * SIZE / 4, (piece + 1) * SIZE / 4);
            w.write(a as u64, data.slice(a..z)).await.unwrap();
        }
        w.seal().await.unwrap();
        let mut at = 0;
        while at < SIZE {
            let r = b
                .read(&si, 0, ShareKind::Immutable, at as u64, 128 << 10)
                .await
                .unwrap();
            at += r.len();
        }
    }
    2.0 * f64::from(SHARES) * SIZE as f64 / 1e6 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let lib: PathBuf = tahoe_core::testing::built_library("tahoe_example_dirstore");
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let root = tempfile::tempdir_in(base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut suite, mut rate) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let fresh = std::sync::atomic::AtomicUsize::new(0);
    for round in 0..5u8 {
        for (i, which) in [Some(lib.as_path()), None].into_iter().enumerate() {
            let t = Instant::now();
            rt.block_on(tahoe_core::testing::storage::run(|| {
                let n = fresh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let dir = root.path().join(format!("suite-{n}"));
                async move { open(which, &dir) }
            }));
            suite[i].push(t.elapsed().as_secs_f64());
            let dir = root.path().join(format!("rate-{round}-{i}"));
            let b = open(which, &dir).unwrap();
            rate[i].push(rt.block_on(throughput(b.as_ref(), round)));
            drop(b);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    let (sl, sn) = (median(suite[0].clone()), median(suite[1].clone()));
    let (rl, rn) = (median(rate[0].clone()), median(rate[1].clone()));
    println!("dirstore loaded through the ABI vs the same code linked in, tmpfs, median of 5:");
    println!("| measure | loaded | linked in | ABI cost |");
    println!("|---|---|---|---|");
    println!(
        "| conformance suite | {:.1} ms | {:.1} ms | {:+.1}% |",
        sl * 1e3,
        sn * 1e3,
        (sl / sn - 1.0) * 100.0
    );
    println!(
        "| 64 x 1 MiB write + read | {rl:.0} MB/s | {rn:.0} MB/s | {:+.1}% |",
        (rn / rl - 1.0) * 100.0
    );

    // 2. s3 (local S3 server) next to fs.
    let server = tahoe_storage_s3::testing::S3Server::start();
    server.create_bucket("bench");
    let registry = tahoe::builtin_registry().unwrap();
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..5u8 {
        for (i, name) in ["s3", "fs"].into_iter().enumerate() {
            let dir = root.path().join(format!("{name}-{round}"));
            std::fs::create_dir_all(dir.join("private")).unwrap();
            std::fs::write(
                dir.join("private/s3-credentials.toml"),
                "access_key_id = \"bench\"\nsecret_access_key = \"bench\"\n",
            )
            .unwrap();
            let b = rt.block_on(async {
                if name == "s3" {
                    let cfg = tahoe_storage_s3::S3Config {
                        bucket: "bench".into(),
                        prefix: format!("r{round}/"),
                        endpoint: server.endpoint(),
                        allow_http: true,
                        ..Default::default()
                    };
                    Ok(Arc::new(tahoe_storage_s3::S3Backend::open(&cfg, &dir)?)
                        as Arc<dyn StorageBackend>)
                } else {
                    let ctx = tahoe_core::plugin::registry::PluginContext::empty(
                        tahoe_core::plugin::registry::PluginKind::Storage,
                        "fs",
                        &dir,
                    );
                    registry.storage("fs", &ctx)
                }
            });
            let b: Arc<dyn StorageBackend> = b.unwrap();
            rates[i].push(rt.block_on(throughput(b.as_ref(), round)));
        }
    }
    let (s3, fs) = (median(rates[0].clone()), median(rates[1].clone()));
    println!("s3 (moto's S3 server on 127.0.0.1) next to fs, tmpfs, median of 5:");
    println!("| backend | 64 x 1 MiB write + read |");
    println!("|---|---|");
    println!("| s3 | {s3:.0} MB/s |");
    println!("| fs | {fs:.0} MB/s |");
}
