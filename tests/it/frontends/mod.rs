//! The grid as a file system, through real clients: the kernel's FUSE
//! (`tahoe mount`, then `cp`, `rsync`, `dd`, `mv`, `rm`, `df`) and
//! OpenSSH's `sftp`, `sshfs` and `rclone` against the node's SFTP server.
//! Each file shares one grid of real processes among its scenarios.
//!
//! These need `fusermount3`, `sshfs`, `rsync`, `rclone` and `ssh-keygen`:
//! `make test` installs them (`make fs-deps`); a missing one fails the
//! test by name, it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod mount;
mod s3;
mod sftp;

/// Run `program` with `args`; its output, failing loudly when the program
/// is not installed.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): `make fs-deps` installs it"))
}

/// Run `program`, asserting that it succeeded; its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether `dir` is a mount point now.
fn mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
}

/// Wait until `dir` is (or is no longer) a mount point.
pub(crate) fn wait_mounted(dir: &Path, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while mounted(dir) != want {
        assert!(
            Instant::now() < deadline,
            "{} still {}mounted",
            dir.display(),
            if want { "not " } else { "" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tree of `count` files, sizes from 0 B up to `largest`, in nested
/// directories under `root`; its files' paths.
fn make_tree(root: &Path, count: usize, largest: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..count {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let size = match i {
            0 => 0,
            i if i % 67 == 1 => largest,
            i if i % 13 == 2 => 1 << 20,
            i => (i * 7919) % 70_000,
        };
        let p = dir.join(format!("f{i}.bin"));
        std::fs::write(&p, tahoe_core::testing::pseudo_random_bytes(i as u64, size)).unwrap();
        files.push(p);
    }
    files
}

/// `cp -r src into` and `cp -r into out`: what comes out is what went in.
fn copy_in_and_out(src: &Path, into: &Path, out: &Path) {
    ok("cp", &["-r", src.to_str().unwrap(), into.to_str().unwrap()]);
    ok("cp", &["-r", into.to_str().unwrap(), out.to_str().unwrap()]);
    same_tree(src, out);
}

/// `diff -r a b` succeeds.
fn same_tree(a: &Path, b: &Path) {
    ok("diff", &["-r", a.to_str().unwrap(), b.to_str().unwrap()]);
}

/// The counter `name` in the node's OpenMetrics.
fn counter(port: u16, name: &str) -> u64 {
    let (status, _, body) = testkit::http(port, "GET", "/statistics?t=openmetrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// A directory of `count` empty files, made in one request; its cap.
pub(super) fn big_directory(web: u16, count: usize) -> String {
    let children: serde_json::Map<String, serde_json::Value> = (0..count)
        .map(|i| {
            (
                format!("entry-{i:05}"),
                serde_json::json!(["filenode", {"ro_uri": "URI:LIT:"}]),
            )
        })
        .collect();
    let body = serde_json::to_vec(&children).unwrap();
    let (status, _, cap) = testkit::http(web, "POST", "/uri?t=mkdir-with-children", &[], &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&cap));
    String::from_utf8(cap).unwrap()
}
