//! The storage conformance suite against a real S3 server (moto's server
//! mode, see `tahoe_storage_s3::testing`).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tahoe_core::kinds::storage::StorageBackend;
use tahoe_storage_s3::testing::S3Server;
use tahoe_storage_s3::{S3Backend, S3Config};

fn config(server: &S3Server, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: bucket.into(),
        prefix: prefix.into(),
        endpoint: server.endpoint(),
        allow_http: true,
        ..S3Config::default()
    }
}

/// A base directory with test credentials in private/.
fn basedir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("private")).unwrap();
    std::fs::write(
        d.path().join("private/s3-credentials.toml"),
        "access_key_id = \"test-key\"\nsecret_access_key = \"test-secret\"\n",
    )
    .unwrap();
    d
}

fn open(
    server: &S3Server,
    base: &Path,
    prefix: &str,
) -> tahoe_core::Result<Arc<dyn StorageBackend>> {
    Ok(
        Arc::new(S3Backend::open(&config(server, "shares", prefix), base)?)
            as Arc<dyn StorageBackend>,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_backend_passes_the_storage_conformance_suite() {
    let server = S3Server::start();
    server.create_bucket("shares");
    let base = basedir();
    let n = AtomicUsize::new(0);
    tahoe_core::testing::storage::run(|| {
        let prefix = format!("fresh-{}/", n.fetch_add(1, Ordering::Relaxed));
        let (server, base) = (&server, base.path());
        async move { open(server, base, &prefix) }
    })
    .await;
    tahoe_core::testing::storage::run_persistent(|| {
        let (server, base) = (&server, base.path());
        async move { open(server, base, "persistent/") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_bad_config_is_a_clear_error() {
    let server = S3Server::start();
    let base = basedir();
    let b = open(&server, base.path(), "").unwrap();
    let e = b
        .list(&tahoe_core::kinds::storage::StorageIndex([1; 16]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), tahoe_core::error::ErrorKind::Unavailable, "{e}");
    let e = S3Backend::open(&S3Config::default(), base.path())
        .err()
        .unwrap();
    assert!(e.to_string().contains("storage.s3.bucket"), "{e}");
    // The credentials file's values never appear in an error about it.
    std::fs::write(
        base.path().join("private/s3-credentials.toml"),
        "access_key_id = \"AKIA-SECRET-ID\"\nsecret = \"hunter2\"\n",
    )
    .unwrap();
    let e = S3Backend::open(&config(&server, "shares", ""), base.path())
        .err()
        .unwrap();
    assert!(
        !e.to_string().contains("hunter2") && !e.to_string().contains("AKIA-SECRET-ID"),
        "{e}"
    );
}

/// Two nodes on one bucket and prefix (each with its own in-process lock):
/// only the conditional puts stand between their writers. Increments are
/// never lost, and of racing seals exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_two_nodes_never_both_win() {
    use bytes::Bytes;
    use tahoe_core::kinds::storage::{ShareKind, StorageIndex, TestVector, WriteVector};
    let server = S3Server::start();
    server.create_bucket("shares");
    let (b1, b2) = (basedir(), basedir());
    let nodes = [
        open(&server, b1.path(), "same/").unwrap(),
        open(&server, b2.path(), "same/").unwrap(),
    ];
    let si = StorageIndex([7; 16]);
    let w = |v: u64| WriteVector {
        offset: 0,
        data: Bytes::copy_from_slice(&v.to_be_bytes()),
    };
    assert!(
        nodes[0]
            .test_and_write(&si, 0, &[], &[w(0)], None)
            .await
            .unwrap()
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..4 {
        let b = nodes[i % 2].clone();
        tasks.spawn(async move {
            let mut done = 0;
            while done < 10 {
                let cur = b.read(&si, 0, ShareKind::Mutable, 0, 8).await.unwrap();
                let v = u64::from_be_bytes(cur[..8].try_into().unwrap());
                let test = TestVector::equals(0, cur.clone());
                if b.test_and_write(&si, 0, &[test], &[w(v + 1)], None)
                    .await
                    .unwrap()
                {
                    done += 1;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let cur = nodes[1]
        .read(&si, 0, ShareKind::Mutable, 0, 8)
        .await
        .unwrap();
    assert_eq!(
        u64::from_be_bytes(cur[..8].try_into().unwrap()),
        40,
        "increments were lost"
    );
    // Racing seals of one immutable share from both nodes.
    let other = StorageIndex([8; 16]);
    let mut racers = tokio::task::JoinSet::new();
    for who in 0..6u8 {
        let b = nodes[usize::from(who) % 2].clone();
        racers.spawn(async move {
            let mut p = b.create(&other, 0, 1000).await?;
            p.write(0, Bytes::from(vec![who; 1000])).await?;
            p.seal().await.map(|_| who)
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = racers.join_next().await {
        match r.unwrap() {
            Ok(who) => winners.push(who),
            Err(e) => assert_eq!(e.kind(), tahoe_core::error::ErrorKind::AlreadyExists, "{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let back = nodes[0]
        .read(&other, 0, ShareKind::Immutable, 0, 1000)
        .await
        .unwrap();
    assert_eq!(back, vec![winners[0]; 1000]);
}

/// The bucket carries its layout's format: written by the first call, and
/// a newer one refuses every call by name, never misread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_carries_its_format_and_a_newer_one_is_refused() {
    use tahoe_core::kinds::storage::StorageIndex;
    let server = S3Server::start();
    server.create_bucket("shares");
    let base = basedir();
    let b = open(&server, base.path(), "node/").unwrap();
    assert!(b.list(&StorageIndex([1; 16])).await.unwrap().is_empty());
    assert!(
        server
            .keys("shares")
            .unwrap()
            .contains(&"node/format".to_string())
    );
    server.put_object("shares", "newer/format", b"tahoe-rs s3 storage format 2\n");
    let b = open(&server, base.path(), "newer/").unwrap();
    for _ in 0..2 {
        let e = b
            .list(&StorageIndex([1; 16]))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 2") && e.contains("(1)"), "{e}");
    }
    let e = b
        .leases(&StorageIndex([1; 16]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("format 2"), "{e}");
}
