//! End-to-end tests of whole grids: real `tahoe` processes talking TLS over
//! TCP on 127.0.0.1, each in its own temporary base directory.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::*;
use tahoe_core::testing::{free_port, pseudo_random_bytes};

#[test]
fn upload_download_and_survive_seven_of_ten_failing() {
    let mut g = Grid::new(10);
    let c0 = g.clients[0].clone();
    let mut caps = Vec::new();
    for (i, size) in [10usize, 1000, (1 << 20) + 3, 5 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pseudo_random_bytes(i as u64, size);
        let f = g.file(&format!("f{i}"), &data);
        let cap = g.put(&c0, &f, &[]).unwrap();
        assert!(
            cap.starts_with(if size <= 55 { "URI:LIT:" } else { "URI:CHK:" }),
            "{cap}"
        );
        assert!(
            g.get(&c0, &cap).unwrap() == data,
            "size {size} did not round-trip"
        );
        caps.push((cap, data));
    }
    // A get that fails leaves OUT as it was, and no partial file; a get to
    // a device writes to the device (and leaves it one).
    let out = g.dir.path().join("kept");
    std::fs::write(&out, b"keep me").unwrap();
    let (good, _) = &caps[3];
    // The same cap with another UEB hash: no share matches it.
    let mut parts: Vec<&str> = good.split(':').collect();
    let wrong_hash = "a".repeat(parts[3].len());
    parts[3] = &wrong_hash;
    let bad = parts.join(":");
    let o = tahoe(
        &[
            "get",
            "--basedir",
            c0.to_str().unwrap(),
            &bad,
            out.to_str().unwrap(),
        ],
        &[],
        60,
    );
    assert!(!o.status.success(), "a cap of nothing downloaded");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let leftovers: Vec<_> = std::fs::read_dir(g.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let o = tahoe(
        &["get", "--basedir", c0.to_str().unwrap(), good, "/dev/null"],
        &[],
        60,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(kind.is_char_device(), "tahoe get replaced /dev/null");
    }
    // Seven storage nodes go away; k = 3 shares are still out there.
    for i in 3..10 {
        let c = g.clients[i].clone();
        g.stop(&c);
    }
    for (cap, data) in &caps {
        assert!(
            &g.get(&c0, cap).unwrap() == data,
            "{cap} lost with 7 of 10 nodes down"
        );
    }
    // With three servers left, happiness 7 cannot be reached.
    let f = g.file("late", &pseudo_random_bytes(99, 100_000));
    let err = g.put(&c0, &f, &[]).unwrap_err();
    assert!(
        err.contains("only 3 server(s)") && err.contains("7 are needed"),
        "{err}"
    );
}

/// Storage nodes whose backend is a loaded library: nine keep their shares
/// through the example `dirstore` library, one through a library that
/// panics in every call. Files go up and come back, the panicking node
/// keeps running, and the shares are in the example's own layout.
#[test]
fn a_grid_stores_its_shares_through_a_loaded_backend_library() {
    use tahoe_core::testing::built_library;
    let dirstore = built_library("tahoe-example-dirstore", "tahoe_example_dirstore");
    let bad = built_library(
        "tahoe-test-misbehaving-plugin",
        "tahoe_test_misbehaving_plugin",
    );
    let g = Grid::with_config(10, |i, _| {
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
    let lib =
        tahoe_core::testing::built_library("tahoe-example-replicate", "tahoe_example_replicate");
    let g = Grid::with_config(3, |_, _| {
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
    let exe = tahoe_core::testing::built(&["-p", "tahoe", "--example", "embed"], "examples/embed");
    let g = Grid::new(10);
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
    let g = Grid::with_config(10, |i, dir| {
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

#[test]
fn kill_dash_nine_during_an_upload_leaves_no_half_share() {
    let mut g = Grid::new(10);
    let c0 = g.clients[0].clone();
    let data = pseudo_random_bytes(7, 48 << 20);
    let f = g.file("big", &data);
    let put = Command::new(EXE)
        .args([
            "put",
            "--basedir",
            c0.to_str().unwrap(),
            f.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill a storage node once it is receiving data.
    let victim = g.clients[5].clone();
    let incoming = victim.join("storage/incoming");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the victim never received a share"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    g.kill9(&victim);
    let out = put.wait_with_output().unwrap();
    let result = if out.status.success() {
        Ok(text(&out.stdout).trim().to_string())
    } else {
        Err(text(&out.stderr))
    };
    g.start(&victim);
    // After the restart nothing half-written is visible: the store dropped
    // its unsealed upload.
    assert_eq!(
        std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0),
        0
    );
    // The file's storage index, whether or not the upload went through.
    let secret = std::fs::read_to_string(c0.join("private/convergence")).unwrap();
    let secret = tahoe_core::base32::decode(secret.trim()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let o = tahoe(
        &[
            "debug",
            "chk-cap",
            f.to_str().unwrap(),
            "--k",
            "3",
            "--n",
            "10",
            "--segment-size",
            "1048576",
            "--convergence",
            &b64,
        ],
        &[],
        60,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let expected_cap = text(&o.stdout).trim().to_string();
    let si = match expected_cap
        .parse::<tahoe_core::format::cap::Cap>()
        .unwrap()
    {
        tahoe_core::format::cap::Cap::Chk(c) => c.storage_index().to_base32(),
        other => panic!("not a CHK cap: {other:?}"),
    };
    let holds = |node: &Path| {
        walk(&node.join("storage/shares")).iter().any(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .is_some_and(|d| d == si.as_str())
        })
    };
    match result {
        Ok(cap) => {
            assert_eq!(cap, expected_cap);
            assert!(
                g.get(&c0, &cap).unwrap() == data,
                "the upload that survived a kill -9 is wrong"
            );
            // Whatever share the victim lists must verify: with only it and
            // two other holders up, the file must still download.
            if holds(&victim) {
                let keep: Vec<PathBuf> = g
                    .clients
                    .iter()
                    .filter(|c| **c != victim && holds(c))
                    .take(2)
                    .cloned()
                    .collect();
                for c in g.clients.clone() {
                    if c != victim && !keep.contains(&c) {
                        g.kill9(&c);
                    }
                }
                let back = g
                    .get(&c0, &cap)
                    .unwrap_or_else(|e| panic!("a share the victim lists does not verify: {e}"));
                assert!(back == data);
            }
        }
        Err(e) => {
            assert!(
                e.contains("unhappy") || e.contains("unavailable"),
                "unclear failure: {e}"
            );
            // A failed upload seals nothing, least of all on the victim.
            assert!(
                !holds(&victim),
                "the victim lists a share of a failed upload"
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn clients_ride_out_a_queen_restart() {
    let small = [
        ("TAHOE_ENCODING__K", "2"),
        ("TAHOE_ENCODING__HAPPY", "3"),
        ("TAHOE_ENCODING__N", "4"),
    ];
    let mut g = Grid::new(4);
    let c0 = g.clients[0].clone();
    let queen = g.queen.clone();
    g.stop(&queen);
    // The queen is down: clients work from what they know.
    let data = pseudo_random_bytes(3, 300_000);
    let f = g.file("while-down", &data);
    let cap = g.put(&c0, &f, &small).unwrap();
    assert!(g.get(&c0, &cap).unwrap() == data);
    // It comes back (same key, same address) and learns every server again.
    g.start(&queen);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let known = g.status(&queen)["known_servers"].as_u64().unwrap_or(0);
        if known == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted queen knows {known} of 4 servers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = tahoe(&["status", "--basedir", c0.to_str().unwrap()], &[], 30);
    assert!(
        text(&status.stdout).contains("queen:       connected"),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn a_wrong_queen_fingerprint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let queen = dir.path().join("queen");
    assert!(
        tahoe(
            &["create-queen", "--basedir", queen.to_str().unwrap()],
            &[],
            30
        )
        .status
        .success()
    );
    let url = std::fs::read_to_string(queen.join("introducer.url")).unwrap();
    // Same address, someone else's key.
    let (scheme_fp, rest) = url.trim().split_once('@').unwrap();
    let fake = format!(
        "{}{}@{rest}",
        &scheme_fp[..scheme_fp.len() - 52],
        "a".repeat(52)
    );
    let client = dir.path().join("client");
    assert!(
        tahoe(
            &[
                "create-client",
                "--basedir",
                client.to_str().unwrap(),
                "--introducer",
                &fake
            ],
            &[],
            30
        )
        .status
        .success()
    );
    let mut q = Command::new(EXE)
        .args(["run", "--basedir", queen.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !queen.join("status.json").exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let f = dir.path().join("f");
    std::fs::write(&f, vec![1u8; 1000]).unwrap();
    let o = tahoe(
        &[
            "put",
            "--basedir",
            client.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        &[],
        60,
    );
    let _ = q.kill();
    let _ = q.wait();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("not the node its address names"), "{err}");
}

#[test]
fn nodes_refuse_bad_basedirs_and_taken_ports() {
    let o = tahoe(&["run", "--basedir", "/nonexistent/tahoe-node"], &[], 30);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("/nonexistent/tahoe-node"),
        "{}",
        text(&o.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let queen = dir.path().join("queen");
    let o = tahoe(
        &[
            "create-queen",
            "--basedir",
            queen.to_str().unwrap(),
            "--listen",
            &addr,
        ],
        &[],
        30,
    );
    assert!(!o.status.success(), "a taken port must be refused");
    assert!(text(&o.stderr).contains(&addr), "{}", text(&o.stderr));
    // A config error stops the node with the key named.
    let q2 = dir.path().join("q2");
    assert!(
        tahoe(
            &["create-queen", "--basedir", q2.to_str().unwrap()],
            &[],
            30
        )
        .status
        .success()
    );
    std::fs::write(q2.join("tahoe.toml"), "[encoding]\nk = 0\n").unwrap();
    let o = tahoe(&["run", "--basedir", q2.to_str().unwrap()], &[], 30);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("encoding.k"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn start_status_stop_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let queen = dir.path().join("queen");
    let q = queen.to_str().unwrap();
    assert!(
        tahoe(&["create-queen", "--basedir", q], &[], 30)
            .status
            .success()
    );
    let o = tahoe(&["start", "--basedir", q], &[], 30);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = tahoe(&["start", "--basedir", q], &[], 30);
    assert!(!o.status.success(), "a second start must be refused");
    assert!(
        text(&o.stderr).contains("already running"),
        "{}",
        text(&o.stderr)
    );
    let s = text(&tahoe(&["status", "--basedir", q], &[], 30).stdout);
    assert!(
        s.contains("role:        Queen") && s.contains("state:       running"),
        "{s}"
    );
    let o = tahoe(&["restart", "--basedir", q], &[], 60);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = tahoe(&["stop", "--basedir", q], &[], 60);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&tahoe(&["status", "--basedir", q], &[], 30).stdout);
    assert!(s.contains("not running"), "{s}");
    assert!(
        queen.join("logs/tahoe.log").exists(),
        "the node logs to BASEDIR/logs/"
    );
    let key_mode = std::fs::metadata(queen.join("private/node.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );
}

/// One node per base directory, held by a lock rather than the pid file:
/// with the pid file gone, a second node on the directory is still refused.
#[test]
fn a_second_node_on_one_basedir_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let queen = dir.path().join("queen");
    let q = queen.to_str().unwrap();
    assert!(
        tahoe(&["create-queen", "--basedir", q], &[], 30)
            .status
            .success()
    );
    let mut first = Command::new(EXE)
        .args(["run", "--basedir", q])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !queen.join("status.json").exists() {
        assert!(Instant::now() < deadline, "the first node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(queen.join("node.pid")).unwrap();
    let o = tahoe(&["run", "--basedir", q], &[], 30);
    let _ = first.kill();
    let _ = first.wait();
    assert!(!o.status.success(), "a second node ran on the same basedir");
    assert!(text(&o.stderr).contains("locked"), "{}", text(&o.stderr));
}

#[test]
fn mutable_files_from_the_command_line() {
    use tahoe_core::format::cap::Cap;
    let g = Grid::new(10);
    let (c0, c1) = (g.clients[0].clone(), g.clients[1].clone());
    // SDMF (--mutable's default) and MDMF of several segments.
    let small = pseudo_random_bytes(1, 5000);
    let f = g.file("small", &small);
    let sdmf = g
        .put_with(&c0, &["--mutable", f.to_str().unwrap()], &[])
        .unwrap();
    assert!(sdmf.starts_with("URI:SSK:"), "{sdmf}");
    let big = pseudo_random_bytes(2, (3 << 20) + 17);
    let f = g.file("big", &big);
    let mdmf = g
        .put_with(&c0, &["--format", "mdmf", f.to_str().unwrap()], &[])
        .unwrap();
    assert!(mdmf.starts_with("URI:MDMF:"), "{mdmf}");
    assert!(g.get(&c1, &sdmf).unwrap() == small);
    assert!(g.get(&c1, &mdmf).unwrap() == big);
    // The read cap reads too; the verify cap cannot.
    let Ok(Cap::SskWrite(w)) = mdmf.parse::<Cap>() else {
        panic!()
    };
    let read = w.read_cap().to_string();
    assert!(g.get(&c1, &read).unwrap() == big);
    let err = g
        .get(&c1, &w.read_cap().verifier().to_string())
        .unwrap_err();
    assert!(err.contains("verify cap cannot be downloaded"), "{err}");
    // `put FILE WRITECAP` replaces the contents, from another client.
    let newer = pseudo_random_bytes(3, 70_000);
    let f = g.file("newer", &newer);
    let out = g.put_with(&c1, &[f.to_str().unwrap(), &sdmf], &[]).unwrap();
    assert!(out.is_empty(), "an overwrite prints nothing: {out}");
    assert!(g.get(&c0, &sdmf).unwrap() == newer);
    // Caps of the wrong kind for the operation.
    let err = g
        .put_with(&c1, &[f.to_str().unwrap(), &read], &[])
        .unwrap_err();
    assert!(
        err.contains("write cap") && err.contains("MDMF read"),
        "{err}"
    );
    let chk = g.put(&c0, &f, &[]).unwrap();
    let err = g
        .put_with(&c1, &[f.to_str().unwrap(), &chk], &[])
        .unwrap_err();
    assert!(err.contains("write cap"), "{err}");
    let err = g
        .put_with(
            &c1,
            &["--mutable", "--format", "chk", f.to_str().unwrap()],
            &[],
        )
        .unwrap_err();
    assert!(err.contains("--format chk"), "{err}");
    let err = g
        .put_with(&c1, &["--format", "mdmf", f.to_str().unwrap(), &sdmf], &[])
        .unwrap_err();
    assert!(err.contains("SDMF"), "{err}");
    // Two clients overwriting at once: both finish (the loser retries)
    // and the file is one of the two, whole.
    let a = pseudo_random_bytes(4, 200_000);
    let b = pseudo_random_bytes(5, 200_000);
    let (fa, fb) = (g.file("a", &a), g.file("b", &b));
    let spawn = |client: &Path, file: &Path| {
        Command::new(EXE)
            .args([
                "put",
                "--basedir",
                client.to_str().unwrap(),
                file.to_str().unwrap(),
                &mdmf,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&c0, &fa), spawn(&c1, &fb));
    for p in [pa, pb] {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let last = g.get(&c0, &mdmf).unwrap();
    assert!(
        last == a || last == b,
        "the file is neither writer's version"
    );
}

/// The shared drive on every client of a grid made with `create-queen`
/// and `create-client`, and the file commands on it, over real processes.
#[test]
fn shared_drive_and_file_commands() {
    let g = Grid::new(10);
    let c = g.clients.clone();
    let ok = |client: &Path, args: &[&str]| {
        run_on(client, args).unwrap_or_else(|e| panic!("tahoe {}: {e}", args.join(" ")))
    };
    // The queen publishes the root once the servers have announced.
    wait_shared_drive(&c[0]);
    assert!(g.queen.join("private/vdrive.published").exists());
    let vdrive = std::fs::read_to_string(g.queen.join("vdrive.cap")).unwrap();
    assert!(vdrive.starts_with("URI:DIR2:"), "{vdrive}");
    for client in &c {
        let aliases = ok(client, &["list-aliases"]);
        assert!(aliases.contains(vdrive.trim()), "{aliases}");
        assert_eq!(ok(client, &["ls"]), "");
    }
    // Commands against a running storage node's base directory leave its
    // storage alone (opening its fs backend would clear unsealed uploads).
    let pending = c[0].join("storage/incoming/an-upload-in-progress");
    std::fs::create_dir_all(pending.parent().unwrap()).unwrap();
    std::fs::write(&pending, b"partial share").unwrap();
    ok(&c[0], &["ls", "tahoe:"]);
    assert!(
        pending.exists(),
        "a command cleared the running node's incoming uploads"
    );
    std::fs::remove_file(&pending).unwrap();
    // put into a path makes the directories on the way; another client
    // reads it back by path.
    let a = pseudo_random_bytes(10, 70_000);
    let fa = g.file("a.bin", &a);
    let cap = ok(
        &c[0],
        &["put", fa.to_str().unwrap(), "tahoe:docs/2026/a.bin"],
    );
    assert!(cap.starts_with("URI:CHK:"), "{cap}");
    assert_eq!(ok(&c[1], &["ls", "tahoe:docs"]), "2026\n");
    assert_eq!(ok(&c[1], &["ls", "docs/2026"]), "a.bin\n");
    let out = g.dir.path().join("a.out");
    ok(
        &c[2],
        &["get", "tahoe:docs/2026/a.bin", out.to_str().unwrap()],
    );
    assert!(std::fs::read(&out).unwrap() == a);
    let long = ok(&c[1], &["ls", "-l", "tahoe:docs/2026"]);
    assert!(
        long.starts_with("-r-- 70000 ") && long.trim_end().ends_with(" a.bin"),
        "{long}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&ok(&c[1], &["ls", "--json", "tahoe:docs/2026"])).unwrap();
    assert_eq!(listing[0], "dirnode");
    let child = &listing[1]["children"]["a.bin"];
    assert_eq!(child[0], "filenode");
    assert_eq!(child[1]["size"], 70000);
    assert_eq!(child[1]["format"], "CHK");
    assert_eq!(child[1]["ro_uri"], cap.trim());
    assert!(child[1]["metadata"]["tahoe"]["linkcrtime"].is_f64());
    assert!(
        listing[1]["rw_uri"]
            .as_str()
            .unwrap()
            .starts_with("URI:DIR2:")
    );
    // put again replaces the file.
    let b = pseudo_random_bytes(11, 3000);
    let fb = g.file("b.bin", &b);
    ok(
        &c[3],
        &["put", fb.to_str().unwrap(), "tahoe:docs/2026/a.bin"],
    );
    ok(
        &c[2],
        &["get", "tahoe:docs/2026/a.bin", out.to_str().unwrap()],
    );
    assert!(std::fs::read(&out).unwrap() == b);
    // A mutable file in a path is overwritten in place by the next put.
    let w = ok(
        &c[0],
        &["put", "--mutable", fa.to_str().unwrap(), "tahoe:m.txt"],
    );
    assert!(w.starts_with("URI:SSK:"), "{w}");
    ok(&c[1], &["put", fb.to_str().unwrap(), "tahoe:m.txt"]);
    assert_eq!(g.get(&c[4], w.trim()).unwrap(), b);
    // mkdir, cp -r both ways, mv, ln, rm.
    let made = ok(&c[0], &["mkdir", "tahoe:docs/sub"]);
    assert!(made.starts_with("URI:DIR2:"), "{made}");
    let tree = g.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("inner/deeper")).unwrap();
    std::fs::write(tree.join("top.txt"), b"top").unwrap();
    std::fs::write(tree.join("inner/mid.bin"), pseudo_random_bytes(12, 100_000)).unwrap();
    std::fs::write(tree.join("inner/deeper/low.txt"), b"low").unwrap();
    let copied = ok(&c[0], &["cp", "-r", tree.to_str().unwrap(), "tahoe:"]);
    assert!(copied.contains("Success: files copied"), "{copied}");
    assert_eq!(ok(&c[1], &["ls", "tahoe:tree/inner"]), "deeper\nmid.bin\n");
    let back = g.dir.path().join("back");
    ok(&c[2], &["cp", "-r", "tahoe:tree", back.to_str().unwrap()]);
    for f in ["top.txt", "inner/mid.bin", "inner/deeper/low.txt"] {
        assert!(
            std::fs::read(back.join("tree").join(f)).unwrap()
                == std::fs::read(tree.join(f)).unwrap(),
            "{f}"
        );
    }
    let one = g.dir.path().join("one.txt");
    assert!(
        ok(&c[3], &["cp", "tahoe:tree/top.txt", one.to_str().unwrap()]).contains("file copied")
    );
    assert_eq!(std::fs::read(&one).unwrap(), b"top");
    ok(&c[3], &["cp", one.to_str().unwrap(), "tahoe:docs/sub/"]);
    ok(&c[3], &["cp", "tahoe:tree/top.txt", "tahoe:docs/copy.txt"]);
    assert_eq!(
        ok(&c[4], &["mv", "tahoe:docs/copy.txt", "tahoe:docs/sub/"]).trim(),
        "OK"
    );
    ok(
        &c[4],
        &[
            "mv",
            "tahoe:docs/sub/copy.txt",
            "tahoe:docs/sub/renamed.txt",
        ],
    );
    assert_eq!(
        ok(&c[5], &["ls", "tahoe:docs/sub"]),
        "one.txt\nrenamed.txt\n"
    );
    assert_eq!(
        ok(
            &c[5],
            &["ln", "tahoe:docs/sub/renamed.txt", "tahoe:link.txt"]
        )
        .trim(),
        "OK"
    );
    ok(&c[6], &["get", "tahoe:link.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"top");
    ok(&c[6], &["rm", "tahoe:link.txt"]);
    ok(&c[6], &["unlink", "tahoe:docs/sub/one.txt"]);
    assert_eq!(ok(&c[7], &["ls", "tahoe:docs/sub"]), "renamed.txt\n");
    // Errors name the path and what is wrong with it.
    for (args, want) in [
        (vec!["get", "tahoe:docs/nope.txt"], "tahoe:docs/nope.txt"),
        (vec!["rm", "tahoe:docs/nope.txt"], "no entry"),
        (vec!["ls", "tahoe:m.txt/x"], "not a directory"),
        (vec!["get", "tahoe:docs"], "is a directory"),
        (
            vec!["put", fb.to_str().unwrap(), "tahoe:docs/sub"],
            "already exists",
        ),
        (vec!["ls", "nosuchalias:"], "unknown alias"),
        (vec!["mkdir", "tahoe:docs/sub"], "already exists"),
    ] {
        let e = run_on(&c[0], &args).unwrap_err();
        assert!(e.contains(want), "tahoe {}: {e}", args.join(" "));
    }
    // Aliases, and read caps where read caps are asked for.
    assert!(ok(&c[0], &["create-alias", "work"]).contains("Alias 'work' created"));
    ok(&c[0], &["put", fb.to_str().unwrap(), "work:w.bin"]);
    assert_eq!(ok(&c[0], &["ls", "work:"]), "w.bin\n");
    let ro = ok(&c[0], &["list-aliases", "--readonly-uri"]);
    assert!(
        ro.contains("URI:DIR2-RO:") && !ro.contains("URI:DIR2:"),
        "{ro}"
    );
    let listing = ok(&c[0], &["ls", "--readonly-uri", "tahoe:"]);
    assert!(
        !listing.contains("URI:DIR2:") && !listing.contains("URI:SSK:"),
        "{listing}"
    );
    assert!(listing.contains("URI:SSK-RO:"), "{listing}");
    let work_ro = ro
        .lines()
        .find(|l| l.contains("work:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert!(ok(&c[1], &["add-alias", "theirs", &work_ro]).contains("added"));
    assert_eq!(ok(&c[1], &["ls", "theirs:"]), "w.bin\n");
    let e = run_on(&c[1], &["put", fb.to_str().unwrap(), "theirs:x"]).unwrap_err();
    assert!(e.contains("read-only"), "{e}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&c[1], &["ls", "--json", "theirs:"])).unwrap();
    assert!(json[1].get("rw_uri").is_none(), "{json}");
    // Ten clients putting into one directory at once lose nothing.
    let files: Vec<PathBuf> = (0..10)
        .map(|i| {
            g.file(
                &format!("p{i}"),
                &pseudo_random_bytes(100 + i, 200 + i as usize),
            )
        })
        .collect();
    let children: Vec<Child> = (0..10)
        .map(|i| {
            Command::new(EXE)
                .args([
                    "put",
                    "-d",
                    c[i].to_str().unwrap(),
                    files[i].to_str().unwrap(),
                    &format!("tahoe:many/p{i}"),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ch in children {
        let o = ch.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let want: String = (0..10).map(|i| format!("p{i}\n")).collect();
    for client in &c {
        assert_eq!(ok(client, &["ls", "tahoe:many"]), want);
    }
}

/// A scratch virtualenv with the real Tahoe-LAFS 1.20 CLI, installed from
/// PyPI on first use (under target/, kept for later runs); a test that
/// needs it fails loudly when it cannot be installed.
fn tahoe_lafs_cli() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tahoe-lafs-1.20-venv");
    let exe = venv.join("bin/tahoe");
    if !exe.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv", venv.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "tahoe-lafs==1.20.0"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok && exe.exists(),
            "could not install tahoe-lafs 1.20.0 from PyPI into {}",
            venv.display()
        );
    }
    exe
}

/// The real Tahoe-LAFS 1.20 `tahoe` CLI pointed at our web gateway.
#[test]
fn tahoe_lafs_cli_against_our_gateway() {
    let cli = tahoe_lafs_cli();
    let mut g = Grid::new(10);
    // The gateway's port, written into BASEDIR/webport as the seed did.
    let port = free_port();
    let gw = g.clients[0].clone();
    std::fs::write(gw.join("webport"), format!("{port}\n")).unwrap();
    g.stop(&gw);
    g.start(&gw);
    let url = format!("http://127.0.0.1:{port}/");
    wait_listening(port);
    g.wait_known(&gw, 10);
    // Tahoe's CLI finds the gateway through node.url in its directory.
    let home = g.dir.path().join("tahoe-cli");
    std::fs::create_dir_all(home.join("private")).unwrap();
    std::fs::write(home.join("node.url"), &url).unwrap();
    let run = |args: &[&str]| -> (bool, String, String) {
        let o = Command::new(&cli)
            .arg("-d")
            .arg(&home)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (o.status.success(), text(&o.stdout), text(&o.stderr))
    };
    let ok = |args: &[&str]| {
        let (good, out, err) = run(args);
        assert!(good, "tahoe {}: {out}{err}", args.join(" "));
        out
    };
    assert!(ok(&["create-alias", "t"]).contains("Alias 't' created"));
    let a = pseudo_random_bytes(20, 150_000);
    let fa = g.file("cli-a.bin", &a);
    let cap = ok(&["put", fa.to_str().unwrap()]);
    assert!(cap.trim().starts_with("URI:CHK:"), "{cap}");
    let lit = g.file("cli-lit.txt", b"tiny literal file\n");
    let litcap = ok(&["put", lit.to_str().unwrap()]);
    assert!(litcap.trim().starts_with("URI:LIT:"), "{litcap}");
    let m = ok(&["put", "--mutable", lit.to_str().unwrap()]);
    assert!(m.trim().starts_with("URI:SSK:"), "{m}");
    ok(&["put", fa.to_str().unwrap(), "t:a.bin"]);
    ok(&["put", "--format=MDMF", lit.to_str().unwrap(), "t:mdmf.txt"]);
    let out = g.dir.path().join("cli-out");
    ok(&["get", "t:a.bin", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == a);
    ok(&["get", cap.trim(), out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == a);
    assert_eq!(ok(&["get", litcap.trim()]), "tiny literal file\n");
    assert_eq!(ok(&["ls", "t:"]), "a.bin\nmdmf.txt\n");
    let long = ok(&["ls", "-l", "t:"]);
    assert!(long.contains("150000") && long.contains("a.bin"), "{long}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["ls", "--json", "t:"])).unwrap();
    assert_eq!(json[1]["children"]["a.bin"][1]["size"], 150000);
    assert_eq!(json[1]["children"]["mdmf.txt"][1]["format"], "MDMF");
    ok(&["mkdir", "t:d"]);
    ok(&["cp", lit.to_str().unwrap(), "t:d/tiny.txt"]);
    let back = g.dir.path().join("cli-back.txt");
    ok(&["cp", "t:d/tiny.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), b"tiny literal file\n");
    ok(&["cp", "t:d/tiny.txt", "t:copy.txt"]);
    let tree = g.dir.path().join("cli-tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"a\n").unwrap();
    std::fs::write(tree.join("sub/b.bin"), pseudo_random_bytes(21, 100_000)).unwrap();
    ok(&["cp", "-r", tree.to_str().unwrap(), "t:d"]);
    assert_eq!(ok(&["ls", "t:d/cli-tree/sub"]), "b.bin\n");
    let tree_back = g.dir.path().join("cli-tree-back");
    ok(&["cp", "-r", "t:d/cli-tree", tree_back.to_str().unwrap()]);
    let listing = Command::new("find").arg(&tree_back).output().unwrap();
    let got = std::fs::read(tree_back.join("cli-tree/sub/b.bin"))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&listing.stdout)));
    assert!(got == std::fs::read(tree.join("sub/b.bin")).unwrap());
    ok(&["mv", "t:copy.txt", "t:d/moved.txt"]);
    ok(&["ln", "t:a.bin", "t:d/link.bin"]);
    ok(&["unlink", "t:mdmf.txt"]);
    assert_eq!(ok(&["ls", "t:"]), "a.bin\nd\n");
    assert_eq!(
        ok(&["ls", "t:d"]),
        "cli-tree\nlink.bin\nmoved.txt\ntiny.txt\n"
    );
    // What the CLI made is ours too: our own client reads it by cap.
    let aliases = ok(&["list-aliases"]);
    let root = aliases
        .split_whitespace()
        .find(|w| w.starts_with("URI:DIR2:"))
        .unwrap_or_else(|| panic!("{aliases}"));
    assert_eq!(
        run_on(&g.clients[1], &["ls", &format!("{root}/d")]).unwrap(),
        "cli-tree\nlink.bin\nmoved.txt\ntiny.txt\n"
    );
    // Errors come back as errors.
    let (good, _, _) = run(&["get", "t:nope.txt", out.to_str().unwrap()]);
    assert!(!good, "getting a missing file succeeded");
}

/// The web API's status codes, headers and shapes, and bad requests
/// answered with clear errors while the gateway keeps serving.
#[test]
fn web_api_shapes_and_bad_requests() {
    let mut g = Grid::new(10);
    let port = free_port();
    let gw = g.clients[0].clone();
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(gw.join("tahoe.toml"))
        .unwrap();
    std::io::Write::write_all(&mut toml, format!("\n[web]\nport = {port}\n").as_bytes()).unwrap();
    g.stop(&gw);
    g.start(&gw);
    g.wait_known(&gw, 10);
    wait_listening(port);
    // webopen gives the URL of a path, which the gateway serves.
    wait_shared_drive(&gw);
    let url = run_on(&gw, &["webopen"]).unwrap();
    let prefix = format!("http://127.0.0.1:{port}/uri/URI%3ADIR2%3A");
    assert!(url.starts_with(&prefix), "{url}");
    // It carries the node's web token, once.
    let token = std::fs::read_to_string(gw.join("private/web.token")).unwrap();
    let (url, given) = url.trim().split_once("?token=").expect("the web token");
    assert_eq!(given, token.trim());
    let (st, _, json) = http(
        port,
        "GET",
        &format!(
            "{}?t=json",
            &url.trim()[format!("http://127.0.0.1:{port}").len()..]
        ),
        &[],
        b"",
    );
    assert_eq!(st, 200, "{}", text(&json));
    let data = pseudo_random_bytes(30, 200_000);
    let (st, _, cap) = http(port, "PUT", "/uri", &[], &data);
    assert_eq!(st, 200);
    let cap = text(&cap);
    assert!(cap.starts_with("URI:CHK:"), "{cap}");
    // The key the gateway hashed as the body arrived (its length known)
    // is the convergent key: the CLI's upload of the same bytes, and a
    // chunked upload (length unknown, key hashed in a first pass), give
    // the same cap.
    assert_eq!(g.put(&gw, &g.file("same", &data), &[]).unwrap(), cap);
    let chunked = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut req = b"PUT /uri HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in data.chunks(70_000) {
            req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            req.extend_from_slice(piece);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&req).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        text(&raw)
    };
    assert!(chunked.starts_with("HTTP/1.1 200"), "{chunked}");
    assert!(chunked.ends_with(&cap), "{chunked}");
    // Whole, then a range.
    let (st, h, body) = http(port, "GET", &format!("/uri/{cap}"), &[], b"");
    assert_eq!((st, body.len()), (200, data.len()));
    assert!(body == data);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let (st, h, body) = http(
        port,
        "GET",
        &format!("/uri/{cap}"),
        &[("Range", "bytes=1000-1999")],
        b"",
    );
    assert_eq!(st, 206);
    assert_eq!(h["content-range"], "bytes 1000-1999/200000");
    assert!(body == data[1000..2000]);
    let (st, _, _) = http(
        port,
        "GET",
        &format!("/uri/{cap}"),
        &[("Range", "bytes=300000-")],
        b"",
    );
    assert_eq!(st, 416);
    // Directories: mkdir, link by cap (201 new, 200 replaced, 409 refused).
    let (st, _, dir) = http(port, "POST", "/uri?t=mkdir", &[], b"");
    assert_eq!(st, 200);
    let dir = text(&dir);
    assert!(dir.starts_with("URI:DIR2:"), "{dir}");
    for (query, want) in [("t=uri", 201), ("t=uri", 200), ("t=uri&replace=false", 409)] {
        let path = format!("/uri/{dir}/a/b.bin?{query}");
        let (st, _, e) = http(port, "PUT", &path, &[], cap.as_bytes());
        assert_eq!(st, want, "{query}: {}", text(&e));
    }
    let (st, h, json) = http(port, "GET", &format!("/uri/{dir}/a?t=json"), &[], b"");
    assert_eq!(st, 200);
    assert!(h["content-type"].starts_with("text/plain"));
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v[1]["children"]["b.bin"][1]["ro_uri"], cap.as_str());
    let (st, _, body) = http(port, "GET", &format!("/uri/{dir}/a/b.bin"), &[], b"");
    assert!(st == 200 && body == data);
    for post in [
        format!("/uri/{dir}/a?t=rename&from_name=b.bin&to_name=c.bin"),
        format!("/uri/{dir}/a?t=relink&from_name=c.bin&to_dir={dir}&to_name=b.bin"),
        format!("/uri/{dir}?t=relink&from_name=b.bin&to_dir=a"),
    ] {
        let (st, _, e) = http(port, "POST", &post, &[], b"");
        assert_eq!(st, 200, "{post}: {}", text(&e));
    }
    let (st, _, gone) = http(port, "DELETE", &format!("/uri/{dir}/a/b.bin"), &[], b"");
    assert_eq!((st, text(&gone)), (200, cap.clone()));
    let (st, _, _) = http(
        port,
        "PUT",
        &format!("/uri/{dir}/x?t=uri"),
        &[],
        cap.as_bytes(),
    );
    assert_eq!(st, 201);
    let (st, _, gone) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=unlink&name=x"),
        &[],
        b"",
    );
    assert_eq!((st, text(&gone)), (200, cap.clone()));
    // Bad requests: clear errors, with Tahoe's codes.
    for (method, path, want) in [
        ("GET", format!("/uri/{dir}/a/b.bin"), 404),
        ("DELETE", format!("/uri/{dir}/a/b.bin"), 404),
        ("GET", "/uri/URI:CHK:nonsense".to_string(), 400),
        ("POST", "/uri?t=bogus".to_string(), 400),
        ("GET", format!("/uri/{dir}?t=bogus"), 400),
        ("PUT", format!("/uri/{cap}"), 400),
        ("GET", "/elsewhere".to_string(), 404),
        ("PUT", format!("/uri/{dir}/..?t=uri"), 400),
    ] {
        let (st, h, body) = http(port, method, &path, &[], cap.as_bytes());
        assert_eq!(st, want, "{method} {path}: {}", text(&body));
        assert!(h["content-type"].starts_with("text/plain"));
        assert!(!body.is_empty());
    }
    // A client that goes away mid-upload costs nothing: the gateway
    // serves the next request.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"PUT /uri HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial")
            .unwrap();
    }
    let (st, _, _) = http(
        port,
        "GET",
        &format!("/uri/{cap}"),
        &[("Range", "bytes=0-9")],
        b"",
    );
    assert_eq!(st, 206);
    assert!(
        std::fs::read_dir(gw.join("tmp")).unwrap().count() <= 1,
        "spooled uploads are left behind"
    );
    web_forms_pages_and_metrics(port, &dir, &data);
}

/// What browsers use: multipart uploads with when_done, t=info and
/// directory pages, error pages, cross-site refusal, and the statistics.
fn web_forms_pages_and_metrics(port: u16, dir: &str, data: &[u8]) {
    // Two files in one multipart form, as a browser without script sends
    // them: linked under their names, then 303 back to the directory.
    let boundary = "XyZzy42";
    let mut form = Vec::new();
    for (name, bytes) in [("one.bin", data), ("two.txt", &b"second file"[..])] {
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(bytes);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"when_done\"\r\n\r\n/uri/{dir}\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (st, h, e) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=upload"),
        &[("Content-Type", &ct)],
        &form,
    );
    assert_eq!(st, 303, "{}", text(&e));
    assert_eq!(h["location"], format!("/uri/{dir}"));
    let (st, h, page) = http(port, "GET", &format!("/uri/{dir}"), &[], b"");
    let page = text(&page);
    assert_eq!(st, 200);
    assert!(h["content-type"].starts_with("text/html"));
    assert!(h["content-security-policy"].contains("default-src 'none'"));
    assert!(page.contains("data-name=\"one.bin\"") && page.contains("data-name=\"two.txt\""));
    let (st, _, one) = http(port, "GET", &format!("/uri/{dir}/one.bin"), &[], b"");
    assert!(st == 200 && one == data, "the uploaded file's bytes");
    // A form cut short stores nothing and leaves the gateway serving.
    let cut = &form[..form.len() / 2];
    let (st, _, _) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=upload&name=cut"),
        &[("Content-Type", &ct)],
        cut,
    );
    assert_eq!(st, 400);
    // Forms beyond their bounds are refused before anything is done: a
    // urlencoded body (413) or one text field over 64 KiB, more than 64
    // fields.
    // (when_done: a value that would otherwise be taken.)
    let big_name = format!("when_done=/{}", "n".repeat(70 << 10));
    let (st, _, e) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=mkdir"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        big_name.as_bytes(),
    );
    assert_eq!(st, 413, "{}", text(&e));
    assert!(text(&e).contains("larger than"), "{}", text(&e));
    let field = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let oversized =
        field("when_done", &format!("/{}", "n".repeat(70 << 10))) + &format!("--{boundary}--\r\n");
    let many: String = (0..65)
        .map(|i| field(&format!("f{i}"), "x"))
        .collect::<String>()
        + &format!("--{boundary}--\r\n");
    for (what, body) in [("a 70 KiB field", oversized), ("65 fields", many)] {
        let (st, _, e) = http(
            port,
            "POST",
            &format!("/uri/{dir}?t=mkdir"),
            &[("Content-Type", &ct)],
            body.as_bytes(),
        );
        assert_eq!(st, 400, "{what}: {}", text(&e));
    }
    // The file page.
    let (st, _, info) = http(port, "GET", &format!("/uri/{dir}/one.bin?t=info"), &[], b"");
    assert_eq!(st, 200);
    assert!(text(&info).contains(&format!("({} bytes)", data.len())));
    // Urlencoded forms: mkdir by name, then t=mkdir-immutable.
    let (st, _, _) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=mkdir"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=sub&when_done=%2F",
    );
    assert_eq!(st, 303);
    let (st, _, imm) = http(port, "POST", "/uri?t=mkdir-immutable", &[], b"{}");
    assert_eq!(st, 200);
    assert!(text(&imm).starts_with("URI:DIR2-LIT:"), "{}", text(&imm));
    // JSON bodies (mkdir-with-children, set_children, mkdir-immutable) are
    // read as JSON even under curl's default urlencoded Content-Type, as
    // Tahoe reads them.
    let (_, _, listing) = http(port, "GET", &format!("/uri/{dir}/one.bin?t=json"), &[], b"");
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    let file_cap = listing[1]["ro_uri"].as_str().unwrap().to_string();
    let curl_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let children = |names: &[&str]| {
        let mut m = serde_json::Map::new();
        for n in names {
            m.insert(
                n.to_string(),
                serde_json::json!(["filenode", {"ro_uri": file_cap}]),
            );
        }
        serde_json::to_vec(&m).unwrap()
    };
    let (st, _, made) = http(
        port,
        "POST",
        "/uri?t=mkdir-with-children",
        &curl_type,
        &children(&["a", "b"]),
    );
    assert_eq!(st, 200, "{}", text(&made));
    let made = text(&made);
    assert!(made.starts_with("URI:DIR2:"), "{made}");
    let (st, _, e) = http(
        port,
        "POST",
        &format!("/uri/{made}?t=set_children"),
        &curl_type,
        &children(&["c"]),
    );
    assert_eq!(st, 200, "{}", text(&e));
    let (st, _, imm) = http(
        port,
        "POST",
        "/uri?t=mkdir-immutable",
        &curl_type,
        &children(&["frozen"]),
    );
    assert_eq!(st, 200, "{}", text(&imm));
    let imm = text(&imm);
    assert!(imm.starts_with("URI:DIR2-CHK:"), "{imm}");
    for (cap, want) in [(&made, vec!["a", "b", "c"]), (&imm, vec!["frozen"])] {
        let (st, _, j) = http(port, "GET", &format!("/uri/{cap}?t=json"), &[], b"");
        assert_eq!(st, 200);
        let j: serde_json::Value = serde_json::from_slice(&j).unwrap();
        let names: Vec<&String> = j[1]["children"].as_object().unwrap().keys().collect();
        assert_eq!(names, want);
        for n in want {
            assert_eq!(j[1]["children"][n][1]["ro_uri"], file_cap.as_str());
        }
    }
    // An open redirect is refused.
    let (st, _, _) = http(
        port,
        "POST",
        &format!("/uri/{dir}?t=mkdir&name=x&when_done=https://evil.example/"),
        &[],
        b"",
    );
    assert_eq!(st, 400);
    // Another site's page cannot make the gateway change anything; the
    // browser gets a page, a program plain text.
    for hdrs in [
        vec![("Origin", "http://evil.example"), ("Accept", "text/html")],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        let (st, h, body) = http(port, "POST", "/uri?t=mkdir", &hdrs, b"");
        assert_eq!(st, 403, "{}", text(&body));
        let html = hdrs.iter().any(|(_, v)| *v == "text/html");
        assert_eq!(h["content-type"].starts_with("text/html"), html);
    }
    // The welcome page and its JSON, the operations page, the statistics.
    let (st, _, welcome) = http(port, "GET", "/", &[], b"");
    assert!(st == 200 && text(&welcome).contains("id=\"servers\""));
    let (st, _, wj) = http(port, "GET", "/?t=json", &[], b"");
    assert_eq!(st, 200);
    let wj: serde_json::Value = serde_json::from_slice(&wj).unwrap();
    assert_eq!(wj["servers"].as_array().unwrap().len(), 10);
    assert!(wj["servers"][0]["nodeid"].is_string());
    let (st, _, ops) = http(port, "GET", "/status", &[], b"");
    assert!(st == 200 && text(&ops).contains("one.bin"));
    let (st, _, sj) = http(port, "GET", "/statistics?t=json", &[], b"");
    assert_eq!(st, 200);
    let sj: serde_json::Value = serde_json::from_slice(&sj).unwrap();
    assert!(sj["counters"]["uploader.files_uploaded"].as_u64().unwrap() >= 3);
    assert!(
        sj["counters"]["downloader.files_downloaded"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert!(sj["stats"]["node.uptime"].as_f64().unwrap() > 0.0);
    let (st, h, om) = http(port, "GET", "/statistics?t=openmetrics", &[], b"");
    assert_eq!(st, 200);
    assert!(h["content-type"].starts_with("application/openmetrics-text"));
    let om = text(&om);
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("tahoe_counters_storage_server_allocate_total"));
    assert!(om.contains("tahoe_web_request_duration_seconds_bucket{kind=\"upload\",le=\"+Inf\"}"));
    for line in om.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(!name.is_empty() && value.parse::<f64>().is_ok(), "{line}");
    }
}

/// A 1 GiB file streams through `PUT /uri` and `GET /uri/CAP` with the
/// gateway's node (which also stores shares) staying within 64 MiB.
#[test]
fn a_gibibyte_streams_through_the_gateway_in_bounded_memory() {
    use std::io::{Read, Write};
    const SIZE: u64 = 1 << 30;
    const CHUNK: usize = 1 << 20;
    // Chunk i of the file: cheap to make again when checking.
    let chunk = |i: u64| -> Vec<u8> {
        let mut c = vec![0u8; CHUNK];
        for (j, w) in c.chunks_mut(8).enumerate() {
            let x = (i << 20 | j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        c
    };
    let mut g = Grid::new(3);
    let port = free_port();
    let gw = g.clients[0].clone();
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(gw.join("tahoe.toml"))
        .unwrap();
    write!(
        toml,
        "\n[web]\nport = {port}\n\n[encoding]\nk = 2\nhappy = 3\nn = 3\n"
    )
    .unwrap();
    g.stop(&gw);
    g.start(&gw);
    g.wait_known(&gw, 3);
    wait_listening(port);
    let pid = g.running[&gw].id();

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /uri HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for i in 0..SIZE / CHUNK as u64 {
        s.write_all(&chunk(i)).unwrap();
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cap = answer.rsplit("\r\n\r\n").next().unwrap().trim().to_string();
    assert!(
        cap.starts_with("URI:CHK:") && cap.ends_with(&format!(":{SIZE}")),
        "{cap}"
    );

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /uri/{cap} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = std::io::BufReader::with_capacity(CHUNK, s);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", text(&head));
    let mut got = vec![0u8; CHUNK];
    for i in 0..SIZE / CHUNK as u64 {
        r.read_exact(&mut got).unwrap();
        assert!(got == chunk(i), "chunk {i} of the download differs");
    }
    assert_eq!(r.read(&mut got).unwrap(), 0, "more bytes than the file");
    let peak = peak_rss(pid);
    assert!(
        peak <= 64 << 20,
        "the gateway's node peaked at {} MiB",
        peak >> 20
    );
    eprintln!("gateway node peak RSS: {} MiB", peak >> 20);
}
