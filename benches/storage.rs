//! Storage backends side by side.
//!
//! 1. What the plugin ABI costs: the example `dirstore` backend loaded
//!    from its shared library (through the C ABI of `tahoe-api`) against
//!    the very same code linked in, behind an adapter that calls it on the
//!    blocking pool the same way but without the ABI. Two measures: the
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

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::error::{Error, ErrorKind, Result};
use tahoe_core::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector,
};
use tahoe_example_dirstore::DirStore;

/// The example's code linked in: each call on the blocking pool, as the
/// loader does, with no C ABI in between.
struct Native(Arc<DirStore>);

fn err(e: tahoe_api::Error) -> Error {
    let kind = match e.kind {
        tahoe_api::ErrorKind::NotFound => ErrorKind::NotFound,
        tahoe_api::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        tahoe_api::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
        _ => ErrorKind::Io,
    };
    Error::new(kind, e.message)
}

fn kind(k: ShareKind) -> tahoe_api::ShareKind {
    match k {
        ShareKind::Immutable => tahoe_api::ShareKind::Immutable,
        ShareKind::Mutable => tahoe_api::ShareKind::Mutable,
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> tahoe_api::Result<R> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(f).await.unwrap().map_err(err)
}

/// A pending share and its size (bounds are the host's to check, as the
/// loader does).
struct NativePending(
    Option<<DirStore as tahoe_api::StorageBackend>::Pending>,
    u64,
);

#[async_trait]
impl PendingShare for NativePending {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        tahoe_core::storage::check_pending_write(self.1, offset, data.len())?;
        let mut p = self.0.take().unwrap();
        let (p, r) = tokio::task::spawn_blocking(move || {
            let r = tahoe_api::PendingShare::write(&mut p, offset, &data);
            (p, r)
        })
        .await
        .unwrap();
        self.0 = Some(p);
        r.map_err(err)
    }
    async fn seal(mut self: Box<Self>) -> Result<()> {
        let p = self.0.take().unwrap();
        blocking(move || tahoe_api::PendingShare::seal(p)).await
    }
    async fn abort(mut self: Box<Self>) -> Result<()> {
        let p = self.0.take().unwrap();
        blocking(move || tahoe_api::PendingShare::abort(p)).await
    }
}

#[async_trait]
impl StorageBackend for Native {
    fn name(&self) -> &str {
        "dirstore-native"
    }
    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        let (b, si) = (self.0.clone(), si.0);
        let p = blocking(move || tahoe_api::StorageBackend::create(&*b, &si, shnum, size)).await?;
        Ok(Box::new(NativePending(Some(p), size)))
    }
    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        k: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        let (b, si, k) = (self.0.clone(), si.0, kind(k));
        blocking(move || tahoe_api::StorageBackend::read(&*b, &si, shnum, k, offset, len))
            .await
            .map(Bytes::from)
    }
    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let (b, si) = (self.0.clone(), si.0);
        let l = blocking(move || tahoe_api::StorageBackend::list(&*b, &si)).await?;
        Ok(l.into_iter()
            .map(|i| ShareInfo {
                shnum: i.shnum,
                size: i.size,
                kind: match i.kind {
                    tahoe_api::ShareKind::Immutable => ShareKind::Immutable,
                    tahoe_api::ShareKind::Mutable => ShareKind::Mutable,
                },
            })
            .collect())
    }
    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        let (b, si) = (self.0.clone(), si.0);
        blocking(move || tahoe_api::StorageBackend::delete(&*b, &si, shnum)).await
    }
    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        tahoe_core::storage::length_after_writes(0, writes, new_length)?;
        let (b, si) = (self.0.clone(), si.0);
        let tests: Vec<_> = tests
            .iter()
            .map(|t| tahoe_api::TestVector {
                offset: t.offset,
                length: t.length,
                expected: t.expected.to_vec(),
            })
            .collect();
        let writes: Vec<_> = writes
            .iter()
            .map(|w| tahoe_api::WriteVector {
                offset: w.offset,
                data: w.data.to_vec(),
            })
            .collect();
        blocking(move || {
            tahoe_api::StorageBackend::test_and_write(&*b, &si, shnum, &tests, &writes, new_length)
        })
        .await
    }
    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        let (b, si) = (self.0.clone(), si.0);
        let l = tahoe_api::Lease {
            renew_secret: lease.renew_secret,
            cancel_secret: lease.cancel_secret,
            expires_at: lease.expires_at,
        };
        blocking(move || tahoe_api::StorageBackend::add_lease(&*b, &si, &l)).await
    }
    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let (b, si) = (self.0.clone(), si.0);
        let l = blocking(move || tahoe_api::StorageBackend::leases(&*b, &si)).await?;
        Ok(l.into_iter()
            .map(|l| Lease {
                renew_secret: l.renew_secret,
                cancel_secret: l.cancel_secret,
                expires_at: l.expires_at,
            })
            .collect())
    }
}

fn open(lib: Option<&Path>, dir: &Path) -> Result<Arc<dyn StorageBackend>> {
    std::fs::create_dir_all(dir).unwrap();
    match lib {
        Some(lib) => tahoe_core::loader::open_storage(lib, "", dir),
        None => Ok(Arc::new(Native(Arc::new(
            <DirStore as tahoe_api::StorageBackend>::open("", dir).map_err(err)?,
        )))),
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
    let lib: PathBuf =
        tahoe_core::testing::built_library("tahoe-example-dirstore", "tahoe_example_dirstore");
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
                    let ctx = tahoe_core::registry::PluginContext::empty(
                        tahoe_core::registry::PluginKind::Storage,
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
