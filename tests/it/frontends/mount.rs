//! `tahoe mount` through the kernel's FUSE, driven by ordinary programs.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use tahoe_core::testing::{free_port, pseudo_random_bytes};
use testkit::{ProcessGrid, http, run_on, wait_shared_drive};

use super::{
    big_directory, copy_in_and_out, counter, make_tree, mounted, ok, run, same_tree, wait_mounted,
};

/// `tahoe mount` of `target` (or the shared drive) at `at`, running until
/// stopped; returns once the kernel shows the mount.
fn mount(node: &Path, target: Option<&str>, at: &Path, extra: &[&str]) -> Child {
    std::fs::create_dir_all(at).unwrap();
    let mut cmd = Command::new(crate::EXE);
    cmd.args(["mount", "-d", node.to_str().unwrap()])
        .args(extra);
    if let Some(t) = target {
        cmd.arg(t);
    }
    let child = cmd
        .arg(at)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_mounted(at, true);
    child
}

/// Stop a `tahoe mount` with SIGINT (Ctrl-C): it exits 0 and the mount
/// is gone.
fn unmount(child: Child, at: &Path) {
    testkit::signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "tahoe mount: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    wait_mounted(at, false);
}

#[test]
fn a_mounted_grid_works_for_cp_rsync_dd_mv_rm_and_df_and_reports_what_it_did() {
    let web = free_port();
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
    let mnt = work.join("mnt");
    let m = mount(&node, None, &mnt, &[]);
    // Only the node's owner may ask it to mount: the socket is 0600 in
    // the 0700 private directory.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&node.join("private/mount.sock")), 0o600);
    assert_eq!(mode(&node.join("private")), 0o700);
    // A connection that never sends its request is closed.
    let mut silent =
        std::os::unix::net::UnixStream::connect(node.join("private/mount.sock")).unwrap();
    silent
        .set_read_timeout(Some(tahoe::fs::control::REQUEST_TIMEOUT * 3))
        .unwrap();
    let mut b = [0u8; 16];
    assert_eq!(
        std::io::Read::read(&mut silent, &mut b).unwrap(),
        0,
        "a silent connection to the mount socket stayed open"
    );

    // 200 files, 0 B to 20 MiB, in and back out.
    let src = work.join("src");
    make_tree(&src, 200, 20 << 20);
    copy_in_and_out(&src, &mnt.join("tree"), &work.join("back"));
    // What the mount wrote is what the grid holds, seen from the CLI.
    let listed = run_on(&node, &["ls", "tahoe:tree/d1/e1"]).unwrap();
    let local: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(src.join("d1/e1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        listed.lines().map(str::to_string).collect::<Vec<_>>(),
        local
    );

    // A new file written in order has its convergent key hashed as the
    // writes arrive: its cap is the one `tahoe put` gives the same bytes.
    let conv = work.join("conv.bin");
    std::fs::write(&conv, pseudo_random_bytes(77, (3 << 20) + 12_345)).unwrap();
    ok(
        "cp",
        &[
            conv.to_str().unwrap(),
            mnt.join("conv.bin").to_str().unwrap(),
        ],
    );
    let put = run_on(&node, &["put", conv.to_str().unwrap()]).unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(&run_on(&node, &["ls", "--json", "tahoe:conv.bin"]).unwrap()).unwrap();
    assert_eq!(listed[0], "filenode", "{listed}");
    assert_eq!(listed[1]["ro_uri"], put.trim(), "{listed}");

    // rsync -a twice: the second finds nothing to send.
    let s = format!("{}/", src.display());
    let r = format!("{}/", mnt.join("synced").display());
    ok("rsync", &["-a", &s, &r]);
    let second = ok("rsync", &["-a", "--stats", &s, &r]);
    assert!(
        second.contains("Number of regular files transferred: 0"),
        "{second}"
    );
    same_tree(&src, &mnt.join("synced"));

    // An edit in place, as dd conv=notrunc makes it.
    let f = mnt.join("tree/d2/e2/f2.bin");
    let mut want = std::fs::read(src.join("d2/e2/f2.bin")).unwrap();
    ok(
        "sh",
        &[
            "-c",
            &format!(
                "printf 'EDITED' | dd of={} bs=1 seek=1000 conv=notrunc status=none",
                f.display()
            ),
        ],
    );
    want[1000..1006].copy_from_slice(b"EDITED");
    assert_eq!(std::fs::read(&f).unwrap(), want);

    // A mutable file is written in place: its cap, and every link to it,
    // sees the new contents.
    let m1 = work.join("m1.txt");
    std::fs::write(&m1, b"mutable, first").unwrap();
    let wcap = run_on(&node, &["put", "--mutable", m1.to_str().unwrap()]).unwrap();
    let wcap = wcap.trim();
    run_on(&node, &["ln", wcap, "tahoe:mut.txt"]).unwrap();
    // Another client's link: the mount sees it once its listing's
    // lifetime (1 s) has passed.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    std::fs::write(mnt.join("mut.txt"), b"mutable, second and longer").unwrap();
    assert_eq!(
        run_on(&node, &["get", wcap]).unwrap(),
        "mutable, second and longer"
    );
    assert_eq!(
        std::fs::read(mnt.join("mut.txt")).unwrap(),
        b"mutable, second and longer"
    );

    // mv across directories, a file and a directory; rm -r; df.
    ok(
        "mv",
        &[f.to_str().unwrap(), mnt.join("tree/d3").to_str().unwrap()],
    );
    assert_eq!(std::fs::read(mnt.join("tree/d3/f2.bin")).unwrap(), want);
    assert!(!f.exists());
    ok(
        "mv",
        &[
            mnt.join("tree/d4").to_str().unwrap(),
            mnt.join("tree/d5/").to_str().unwrap(),
        ],
    );
    same_tree(&src.join("d4"), &mnt.join("tree/d5/d4"));
    // RENAME_NOREPLACE is honoured: the target stays, so does the source.
    let (from, to) = (mnt.join("tree/d3/f2.bin"), mnt.join("tree/d0/e0/f0.bin"));
    assert_eq!(renameat2_noreplace(&from, &to), Some(libc::EEXIST));
    assert_eq!(std::fs::read(&to).unwrap(), b"");
    assert_eq!(std::fs::read(&from).unwrap(), want);
    ok("rm", &["-r", mnt.join("synced").to_str().unwrap()]);
    assert!(!mnt.join("synced").exists());
    assert!(!run_on(&node, &["ls", "tahoe:"]).unwrap().contains("synced"));
    let df = ok("df", &["-B1", "--output=size,avail", mnt.to_str().unwrap()]);
    let avail: u64 = df
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(avail > 0, "{df}");

    // Names the grid cannot hold: a clear error, and the mount serves on.
    let bad = mnt.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    let e = std::fs::write(&bad, b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    assert!(mnt.join("tree").is_dir());

    // A directory of 10,000 entries lists whole.
    let big = big_directory(web, 10_000);
    run_on(&node, &["ln", &big, "tahoe:big"]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(std::fs::read_dir(mnt.join("big")).unwrap().count(), 10_000);

    // Both the operations page and the statistics saw the mount's work.
    assert!(counter(web, "tahoe_counters_fuse_upload_total") >= 200);
    assert_eq!(counter(web, "tahoe_counters_fuse_upload_failed_total"), 0);
    assert!(counter(web, "tahoe_counters_fuse_read_total") > 0);
    let (status, _, page) = http(web, "GET", "/status", &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("fuse: tree/d2/e2/f2.bin"));

    // A read-only cap mounts read-only: writes fail with EROFS.
    let rw = std::fs::read_to_string(node.join("vdrive.cap")).unwrap();
    let (status, _, body) = http(
        web,
        "GET",
        &format!("/uri/{}?t=json", percent(rw.trim())),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ro: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ro_cap = ro[1]["ro_uri"].as_str().unwrap().to_string();
    assert!(ro_cap.starts_with("URI:DIR2-RO:"), "{ro_cap}");
    let ro_mnt = work.join("ro");
    let ro_child = mount(&node, Some(&ro_cap), &ro_mnt, &[]);
    assert_eq!(std::fs::read(ro_mnt.join("tree/d3/f2.bin")).unwrap(), want);
    for e in [
        std::fs::write(ro_mnt.join("new"), b"x").unwrap_err(),
        std::fs::create_dir(ro_mnt.join("newdir")).unwrap_err(),
        std::fs::remove_file(ro_mnt.join("tree/d3/f2.bin")).unwrap_err(),
    ] {
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    }
    // An unmount from outside ends `tahoe mount` with success.
    ok("fusermount3", &["-u", ro_mnt.to_str().unwrap()]);
    let o = ro_child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!mounted(&ro_mnt));

    // A file larger than the read-ahead window (8 MiB), opened and read
    // in part while every server is up: the rest is read below, after the
    // grid has lost too many of them.
    let long = pseudo_random_bytes(10, 24 << 20);
    std::fs::write(mnt.join("long.bin"), &long).unwrap();
    let mut reading = std::fs::File::open(mnt.join("long.bin")).unwrap();
    let mut head = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut reading, &mut head).unwrap();
    assert!(head == long[..1 << 20]);

    // Too few servers for an upload (happy is 7): cp exits non-zero,
    // nothing is linked.
    let all = g.clients.clone();
    for c in &all[6..] {
        g.stop(c);
    }
    let big = work.join("orphan.bin");
    std::fs::write(&big, pseudo_random_bytes(9, 300_000)).unwrap();
    let o = run(
        "cp",
        &[
            big.to_str().unwrap(),
            mnt.join("orphan.bin").to_str().unwrap(),
        ],
    );
    assert!(!o.status.success(), "cp succeeded with 6 of 10 servers");
    assert!(!run_on(&node, &["ls", "tahoe:"]).unwrap().contains("orphan"));

    // Two servers left of ten (k is 3): the download under the open file
    // fails part-way, and the read says so (EIO) after giving only
    // bytes of the file, in place: never a short file that looks whole.
    for c in &all[2..6] {
        g.stop(c);
    }
    let mut rest = Vec::new();
    let e = std::io::Read::read_to_end(&mut reading, &mut rest).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(rest.len() < long.len() - head.len(), "{} bytes", rest.len());
    assert!(rest == long[head.len()..head.len() + rest.len()]);
    drop(reading);

    unmount(m, &mnt);
    assert!(!mnt.join("tree").exists());
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: `None` when it succeeded,
/// else its errno.
#[allow(unsafe_code)]
fn renameat2_noreplace(from: &Path, to: &Path) -> Option<i32> {
    use std::ffi::CString;
    let (f, t) = (
        CString::new(from.as_os_str().as_bytes()).unwrap(),
        CString::new(to.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: two NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    (r != 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

use std::os::unix::ffi::OsStrExt as _;
