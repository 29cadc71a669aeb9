//! The node's SFTP server, driven by OpenSSH's `sftp`, `sshfs` and
//! `rclone`: accounts see their own roots only, a wrong key is refused,
//! and bad input gets a clear status while the server serves on.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tahoe_core::testing::{free_port, pseudo_random_bytes};
use testkit::{ProcessGrid, http, run_on, wait_listening, wait_shared_drive};

use super::{big_directory, copy_in_and_out, counter, make_tree, ok, same_tree, wait_mounted};

/// A new OpenSSH key pair at `path`; the public key's type and base64.
fn keygen(path: &Path) -> (String, String) {
    ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test",
            "-f",
            path.to_str().unwrap(),
        ],
    );
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut f = public.split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

/// The server's connection cap and login deadline in this test: long
/// enough that a loaded machine logs in and reaches the cap's check in
/// time.
const MAX_CONNECTIONS: usize = 16;
const AUTH_TIMEOUT: u64 = 10;

const SSH_OPTS: [&str; 8] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "LogLevel=ERROR",
];

/// `sftp -b -` as `user` with `key`, started: its batch goes to its
/// input.
fn spawn_sftp(port: u16, key: &Path, user: &str) -> std::process::Child {
    Command::new("sftp")
        .args([
            "-b",
            "-",
            "-P",
            &port.to_string(),
            "-i",
            key.to_str().unwrap(),
        ])
        .args(SSH_OPTS)
        .arg(format!("{user}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("sftp could not run ({e}): `make fs-deps` installs it"))
}

/// `sftp -b` of `batch` as `user` with `key`.
fn sftp(port: u16, key: &Path, user: &str, batch: &str) -> Output {
    let mut child = spawn_sftp(port, key, user);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn sftp_ok(port: u16, key: &Path, user: &str, batch: &str) -> String {
    let o = sftp(port, key, user, batch);
    assert!(
        o.status.success(),
        "sftp {batch}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The spool files the node in `node` holds open (unlinked `fs-*`).
fn open_spools(node: &Path) -> usize {
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.join("status.json")).unwrap()).unwrap();
    let pid = status["pid"].as_u64().unwrap();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().contains("/tmp/fs-"))
        .count()
}

#[test]
fn sftp_sshfs_and_rclone_work_on_their_accounts_roots_only() {
    let (web, port) = (free_port(), free_port());
    let mut g = ProcessGrid::with_config(10, |i, _| {
        if i == 0 {
            format!("\n[web]\nport = {web}\n")
        } else {
            String::new()
        }
    });
    let node = g.clients[0].clone();
    wait_shared_drive(&node);
    let work = g.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // Two accounts with roots of their own; a third key nobody knows.
    let alice_root = run_on(&node, &["mkdir"]).unwrap().trim().to_string();
    let bob_root = run_on(&node, &["mkdir"]).unwrap().trim().to_string();
    let (alice, bob, mallory) = (work.join("alice"), work.join("bob"), work.join("mallory"));
    let (ak, ab) = keygen(&alice);
    let (bk, bb) = keygen(&bob);
    keygen(&mallory);
    std::fs::write(
        node.join("private/accounts"),
        format!("# test accounts\nalice {ak} {ab} {alice_root}\nbob {bk} {bb} {bob_root}\n"),
    )
    .unwrap();
    let config = node.join("tahoe.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[sftp]\nenabled = true\nport = {port}\nmax_connections = {MAX_CONNECTIONS}\n\
         auth_timeout_secs = {AUTH_TIMEOUT}\n"
    ));
    std::fs::write(&config, toml).unwrap();
    g.stop(&node);
    g.start(&node);
    wait_listening(port);
    let host_key = node.join("private/ssh_host_ed25519_key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&host_key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // sftp: put, get, ls, mkdir, rename, rm, rmdir.
    let a = work.join("a.bin");
    let data = pseudo_random_bytes(1, 3 << 20);
    std::fs::write(&a, &data).unwrap();
    let back = work.join("a.back");
    let out = sftp_ok(
        port,
        &alice,
        "alice",
        &format!(
            "mkdir docs\nput {} docs/a.bin\nls -l docs\nget docs/a.bin {}\n\
             rename docs/a.bin docs/b.bin\nmkdir gone\nrmdir gone\nput {} docs/c.bin\nrm docs/c.bin\nls -1 docs\n",
            a.display(),
            back.display(),
            a.display()
        ),
    );
    assert_eq!(std::fs::read(&back).unwrap(), data);
    assert!(out.contains(&format!(" {} ", data.len())), "{out}");
    let listed = run_on(&node, &["ls", &format!("{alice_root}/docs")]).unwrap();
    assert_eq!(listed.trim(), "b.bin");
    assert!(
        run_on(&node, &["ls", &alice_root])
            .unwrap()
            .contains("docs")
    );
    assert!(
        !run_on(&node, &["ls", &alice_root])
            .unwrap()
            .contains("gone")
    );

    // bob sees his root only, `..` included.
    let o = sftp(port, &bob, "bob", "ls /docs\n");
    assert!(!o.status.success());
    let out = sftp_ok(port, &bob, "bob", "cd ..\ncd ..\npwd\nls -1a\n");
    assert!(out.contains("Remote working directory: /"), "{out}");
    assert!(!out.contains("docs"), "{out}");
    let o = sftp(port, &bob, "bob", "get ../../docs/b.bin /dev/null\n");
    assert!(!o.status.success());
    // ... while alice's `..` stops at her root as well.
    sftp_ok(
        port,
        &alice,
        "alice",
        &format!("get ../../docs/b.bin {}\n", back.display()),
    );
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // Wrong keys are refused: an unknown one, and bob's key as alice.
    for (key, user) in [(&mallory, "alice"), (&bob, "alice")] {
        let o = sftp(port, key, user, "ls\n");
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("Permission denied"), "{err}");
    }

    // Connections that never log in (silent, or silent after the
    // version exchange) take every slot: one more is closed at once, and
    // all are closed at the login deadline, after which logins work.
    let opened = Instant::now();
    // Each slot is taken once the server greets it: the sessions of the
    // steps above may still be ending (a refused login lingers a second),
    // and a connection over the cap meanwhile is closed at once, so it
    // is opened again.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|i| {
            loop {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut greeting = [0u8; 8];
                match s.read(&mut greeting) {
                    Ok(n) if n > 0 => {
                        if i % 2 == 0 {
                            s.write_all(b"SSH-2.0-idle\r\n").unwrap();
                        }
                        break s;
                    }
                    _ => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 256];
    let answer = extra.read(&mut buf);
    // Before the deadline, or the slots would be free again.
    assert!(
        opened.elapsed() < Duration::from_secs(AUTH_TIMEOUT),
        "the machine was too slow to check the cap"
    );
    assert!(
        matches!(answer, Ok(0) | Err(_)),
        "a connection past max_connections was served"
    );
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            assert!(
                opened.elapsed() < Duration::from_secs(AUTH_TIMEOUT + 5),
                "a connection that never logged in outlived the deadline"
            );
        }
    }
    sftp_ok(port, &alice, "alice", "ls docs\n");

    // Bad input: a clear status, and the server serves on.
    let o = sftp(port, &alice, "alice", "symlink docs/b.bin docs/link\n");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Operation unsupported"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let deep = vec!["a"; 300].join("/");
    let o = sftp(port, &alice, "alice", &format!("ls {deep}\n"));
    assert!(!o.status.success());
    let big = big_directory(web, 10_000);
    run_on(&node, &["ln", &big, &format!("{alice_root}/big")]).unwrap();
    let out = sftp_ok(port, &alice, "alice", "ls -1 big\n");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("big/entry-")).count(),
        10_000
    );

    // A client gone mid-upload: nothing linked, no spool left open.
    let huge = work.join("huge.bin");
    std::fs::write(&huge, pseudo_random_bytes(2, 60 << 20)).unwrap();
    let mut child = spawn_sftp(port, &alice, "alice");
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("put {} docs/huge.bin\n", huge.display()).as_bytes())
            .unwrap();
        // Kill it once its upload is under way.
        let deadline = Instant::now() + Duration::from_secs(30);
        while open_spools(&node) == 0 {
            assert!(Instant::now() < deadline, "the upload never began");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_spools(&node) > 0 {
        assert!(Instant::now() < deadline, "a spool outlived its session");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !run_on(&node, &["ls", &format!("{alice_root}/docs")])
            .unwrap()
            .contains("huge")
    );
    sftp_ok(port, &alice, "alice", "ls docs\n");

    // sshfs: the same tree test as the mount's.
    let mnt = work.join("sshfs");
    std::fs::create_dir_all(&mnt).unwrap();
    ok(
        "sshfs",
        &[
            "-o",
            &format!(
                "IdentityFile={},port={port},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,IdentitiesOnly=yes",
                alice.display()
            ),
            "alice@127.0.0.1:/",
            mnt.to_str().unwrap(),
        ],
    );
    wait_mounted(&mnt, true);
    let src = work.join("src");
    make_tree(&src, 60, 5 << 20);
    copy_in_and_out(&src, &mnt.join("tree"), &work.join("out"));
    // SFTP carries whole seconds: rsync compares at that resolution.
    let (s, r) = (
        format!("{}/", src.display()),
        format!("{}/", mnt.join("synced").display()),
    );
    ok("rsync", &["-a", "--modify-window=1", &s, &r]);
    let second = ok("rsync", &["-a", "--modify-window=1", "--stats", &s, &r]);
    assert!(
        second.contains("Number of regular files transferred: 0"),
        "{second}"
    );
    ok(
        "mv",
        &[
            mnt.join("tree/d1").to_str().unwrap(),
            mnt.join("tree/d2/").to_str().unwrap(),
        ],
    );
    same_tree(&src.join("d1"), &mnt.join("tree/d2/d1"));
    ok("rm", &["-r", mnt.join("synced").to_str().unwrap()]);
    assert!(!mnt.join("synced").exists());
    ok("df", &[mnt.to_str().unwrap()]);
    ok("fusermount3", &["-u", mnt.to_str().unwrap()]);
    wait_mounted(&mnt, false);

    // rclone with an sftp remote: 500 files up and back, check equal.
    let many = work.join("many");
    for i in 0..500 {
        let d = many.join(format!("g{}", i % 10));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("n{i}")),
            pseudo_random_bytes(i, (i as usize * 37) % 5000),
        )
        .unwrap();
    }
    let remote = format!(
        ":sftp,host=127.0.0.1,port={port},user=alice,key_file={},disable_hashcheck=true,shell_type=none:many",
        alice.display()
    );
    let rclone = |args: &[&str]| ok("rclone", &[&["--config", "/dev/null", "-q"], args].concat());
    rclone(&["sync", many.to_str().unwrap(), &remote]);
    let down = work.join("many.back");
    rclone(&["sync", &remote, down.to_str().unwrap()]);
    same_tree(&many, &down);
    rclone(&["check", "--download", many.to_str().unwrap(), &remote]);

    // The operations page and statistics saw the SFTP work.
    assert!(counter(web, "tahoe_counters_sftp_upload_total") >= 500);
    assert!(counter(web, "tahoe_counters_sftp_read_total") > 0);
    let (status, _, page) = http(web, "GET", "/status", &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("sftp: many/"));
}
