//! Nodes' lives: refused queens, bad base directories and taken ports,
//! `start` / `status` / `stop` in the background, one node per directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{tahoe, text};

use crate::EXE;

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
