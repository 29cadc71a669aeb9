//! Files through a grid whose nodes fail: seven of ten storage nodes
//! stopped, one killed (`kill -9`) during an upload, the queen restarted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;
use testkit::{ProcessGrid, tahoe, text};

use super::walk;
use crate::EXE;

#[test]
fn upload_download_and_survive_seven_of_ten_failing() {
    let mut g = ProcessGrid::new(10);
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

#[test]
fn kill_dash_nine_during_an_upload_leaves_no_half_share() {
    let mut g = ProcessGrid::new(10);
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

#[test]
fn clients_ride_out_a_queen_restart() {
    let small = [
        ("TAHOE_ENCODING__K", "2"),
        ("TAHOE_ENCODING__HAPPY", "3"),
        ("TAHOE_ENCODING__N", "4"),
    ];
    let mut g = ProcessGrid::new(4);
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
