//! Grids whose nodes keep shares or code files through something else than
//! the defaults: a loaded backend library, a loaded codec library, S3
//! buckets; and a program with a client node inside (examples/embed).

use std::process::Command;

use tahoe_core::testing::pseudo_random_bytes;
use testkit::{ProcessGrid, text};

use super::walk;

/// Storage nodes whose backend is a loaded library: nine keep their shares
/// through the example `dirstore` library, one through a library that
/// panics in every call. Files go up and come back, the panicking node
/// keeps running, and the shares are in the example's own layout.
#[test]
fn a_grid_stores_its_shares_through_a_loaded_backend_library() {
    use tahoe_core::testing::built_library;
    let dirstore = built_library("tahoe_example_dirstore");
    let bad = built_library("tahoe_test_misbehaving_plugin");
    let g = ProcessGrid::with_config(10, |i, _| {
        let (lib, backend, section) = if i == 9 {
            (&bad, "misbehaving", "mode = \"panic\"")
        } else {
            (&dirstore, "dirstore", "path = \"dirstore-shares\"")
        };
        format!(
            "backend = \"{backend}\"\n\n[storage.{backend}]\n{section}\n\n[plugins]\nload = [{:?}]\n",
            lib.to_str().unwrap()
        )
    });
    let data = pseudo_random_bytes(4242, (3 << 20) + 5);
    let cap = g.put(&g.clients[0], &g.file("in", &data), &[]).unwrap();
    assert_eq!(g.get(&g.clients[3], &cap).unwrap(), data);
    // A mutable file too: its shares are written by test-and-write.
    let m = g.file("mutable", b"version one of a mutable file");
    let wcap = g
        .put_with(&g.clients[1], &["--mutable", m.to_str().unwrap()], &[])
        .unwrap();
    assert_eq!(
        g.get(&g.clients[2], &wcap).unwrap(),
        b"version one of a mutable file"
    );
    // Shares are where the example keeps them (ROOT/<si>/<n>.imm and
    // .mut), and none in the fs backend's layout.
    let (mut imm, mut mutable) = (0, 0);
    for c in &g.clients[..9] {
        for si in std::fs::read_dir(c.join("dirstore-shares"))
            .unwrap()
            .flatten()
        {
            for f in std::fs::read_dir(si.path()).into_iter().flatten().flatten() {
                match f.path().extension().and_then(|e| e.to_str()) {
                    Some("imm") => imm += 1,
                    Some("mut") => mutable += 1,
                    _ => {}
                }
            }
        }
        assert!(walk(&c.join("storage")).is_empty(), "fs-layout shares");
    }
    assert!(imm >= 10, "{imm} immutable shares in the dirstore layout");
    assert!(
        mutable >= 7,
        "{mutable} mutable shares in the dirstore layout"
    );
    // The node whose library panics is alive and says why it held nothing.
    let bad_node = &g.clients[9];
    let pid = g.running[bad_node].id();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(!state.contains(") Z "), "the node died: {state}");
    let log = std::fs::read_to_string(bad_node.join("test-run.log")).unwrap();
    assert!(
        log.contains("misbehaving on purpose"),
        "its plugin never ran: {log}"
    );
}

/// A codec from a shared library (the `replicate` example, 1-of-3) on
/// every node: a file goes up and comes back through it, and its cap
/// says 1-of-3.
#[test]
fn files_are_coded_by_a_loaded_codec_library() {
    let lib = tahoe_core::testing::built_library("tahoe_example_replicate");
    let g = ProcessGrid::with_config(3, |_, _| {
        format!(
            "\n[encoding]\nk = 1\nhappy = 3\nn = 3\n\n[codec]\nname = \"replicate\"\n\n[plugins]\nload = [{:?}]\n",
            lib.to_str().unwrap()
        )
    });
    let data = pseudo_random_bytes(777, (2 << 20) + 3);
    let cap = g.put(&g.clients[0], &g.file("in", &data), &[]).unwrap();
    assert!(cap.ends_with(&format!(":1:3:{}", data.len())), "{cap}");
    assert_eq!(g.get(&g.clients[2], &cap).unwrap(), data);
}

/// examples/embed: a program with a client node inside uploads and
/// downloads a file on a running grid.
#[test]
fn the_embed_example_uploads_and_downloads_on_a_grid() {
    let exe = tahoe_core::testing::built("examples/embed");
    let g = ProcessGrid::new(10);
    let data = pseudo_random_bytes(31337, 300_000);
    let file = g.file("embedded.bin", &data);
    let o = Command::new(exe)
        .args([g.clients[4].to_str().unwrap(), file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let cap = out.lines().next().unwrap();
    assert!(cap.starts_with("URI:CHK:"), "{out}");
    assert!(out.contains("compared"), "{out}");
    // What it stored is there for everyone else.
    assert_eq!(g.get(&g.clients[0], cap).unwrap(), data);
}

/// Storage nodes keeping their shares in S3 (a bucket each on one local S3
/// server): files go up and come back, and when one node's bucket is
/// removed mid-test, uploads and downloads go on through the others and
/// that node keeps running.
#[test]
fn a_grid_on_s3_buckets_survives_one_bucket_removed() {
    use tahoe_storage_s3::testing::S3Server;
    let s3 = S3Server::start();
    for i in 0..10 {
        s3.create_bucket(&format!("node{i}"));
    }
    let endpoint = s3.endpoint();
    let g = ProcessGrid::with_config(10, |i, dir| {
        std::fs::create_dir_all(dir.join("private")).unwrap();
        std::fs::write(
            dir.join("private/s3-credentials.toml"),
            "access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        )
        .unwrap();
        format!(
            "backend = \"s3\"\n\n[storage.s3]\nbucket = \"node{i}\"\nendpoint = \"{endpoint}\"\nallow_http = true\n"
        )
    });
    let data = pseudo_random_bytes(5150, (9 << 20) + 11); // multipart: 2 parts per share
    let cap = g.put(&g.clients[0], &g.file("in", &data), &[]).unwrap();
    assert_eq!(g.get(&g.clients[5], &cap).unwrap(), data);
    let m = g.file("m", b"a mutable file on S3");
    let wcap = g
        .put_with(&g.clients[1], &["--mutable", m.to_str().unwrap()], &[])
        .unwrap();
    // Every seal that claimed a share finished it: ten shares of the big
    // file, one per bucket, and no claim without its share.
    let mut imm = 0;
    for i in 0..10 {
        let keys = s3.keys(&format!("node{i}")).unwrap();
        for k in keys.iter().filter(|k| k.starts_with("claims/")) {
            let share = format!("shares/{}.imm", &k["claims/".len()..]);
            assert!(
                keys.contains(&share),
                "node{i}: {k} without {share}: {keys:?}"
            );
        }
        imm += keys.iter().filter(|k| k.ends_with(".imm")).count();
    }
    assert!(imm >= 10, "{imm} immutable shares");
    // One node's bucket goes away, shares and all.
    s3.remove_bucket("node3");
    assert_eq!(g.get(&g.clients[6], &cap).unwrap(), data);
    assert_eq!(
        g.get(&g.clients[2], &wcap).unwrap(),
        b"a mutable file on S3"
    );
    let more = pseudo_random_bytes(5151, 300_000);
    let cap2 = g.put(&g.clients[4], &g.file("more", &more), &[]).unwrap();
    assert_eq!(g.get(&g.clients[7], &cap2).unwrap(), more);
    let pid = g.running[&g.clients[3]].id();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(
        !state.contains(") Z "),
        "the node without a bucket died: {state}"
    );
}
