//! `tahoe check` on a grid of real processes: what the servers hold, as
//! servers go away.

use serde_json::Value;
use tahoe_core::format::cap::Cap;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::{ProcessGrid, run_on, tahoe, text};

use super::walk;

/// `tahoe check --json CAP` through `client`, parsed.
fn check_json(client: &std::path::Path, cap: &str) -> Value {
    check_json_with(client, &[], cap)
}

/// `tahoe check --json OPTIONS... CAP` through `client`, parsed.
fn check_json_with(client: &std::path::Path, options: &[&str], cap: &str) -> Value {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(options);
    args.push(cap);
    let out = run_on(client, &args).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The counts a check reports, in Tahoe's names.
fn counts(v: &Value) -> (bool, bool, u64, u64, u64, usize) {
    let r = &v["results"];
    (
        r["healthy"].as_bool().unwrap(),
        r["recoverable"].as_bool().unwrap(),
        r["count-shares-good"].as_u64().unwrap(),
        r["count-good-share-hosts"].as_u64().unwrap(),
        r["count-happiness"].as_u64().unwrap(),
        r["servers-responding"].as_array().unwrap().len(),
    )
}

#[test]
fn check_counts_what_the_servers_hold_as_they_go() {
    let mut g = ProcessGrid::new(10);
    let c0 = g.clients[0].clone();
    // A CHK file of three segments, an SDMF file, a directory, a LIT file.
    let big = g.file("big", &pseudo_random_bytes(31, 300_000));
    let chk = g.put(&c0, &big, &[]).unwrap();
    let sdmf = g
        .put_with(&c0, &["--mutable", big.to_str().unwrap()], &[])
        .unwrap();
    let dir = run_on(&c0, &["mkdir"]).unwrap().trim().to_string();
    let lit = g.put(&c0, &g.file("lit", b"tiny"), &[]).unwrap();
    assert!(lit.starts_with("URI:LIT:"), "{lit}");
    for cap in [&chk, &sdmf, &dir] {
        let v = check_json(&c0, cap);
        assert_eq!(counts(&v), (true, true, 10, 10, 10, 10), "{cap}: {v:#}");
        assert_eq!(v["summary"], "Healthy");
        assert_eq!(v["results"]["needs-rebalancing"], false);
        assert_eq!(v["results"]["count-shares-needed"], 3);
        assert_eq!(v["results"]["count-shares-expected"], 10);
        assert_eq!(v["results"]["sharemap"].as_object().unwrap().len(), 10);
    }
    // Mutable shares are named by version, as Tahoe names them.
    let v = check_json(&c0, &sdmf);
    let names: Vec<&String> = v["results"]["sharemap"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("seq1-") && n.contains("-sh")),
        "{names:?}"
    );
    // A literal file is healthy by definition, with no storage index.
    let v = check_json(&c0, &lit);
    assert_eq!(
        v,
        serde_json::json!({"storage-index": "", "results": {"healthy": true}})
    );
    assert_eq!(
        run_on(&c0, &["check", &lit]).unwrap(),
        "Summary: Healthy (LIT)\n storage index: \n"
    );
    // Tahoe's lines.
    let si = check_json(&c0, &chk)["storage-index"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(si.len(), 26);
    assert_eq!(
        run_on(&c0, &["check", &chk]).unwrap(),
        format!(
            "Summary: Healthy\n storage index: {si}\n good-shares: 10 (encoding is 3-of-10)\n wrong-shares: 0\n"
        )
    );

    // Verify with the verify cap alone (no read key to derive from it).
    let Ok(Cap::Chk(c)) = chk.parse::<Cap>() else {
        panic!("{chk}")
    };
    let vcap = Cap::ChkVerifier(c.verifier()).to_string();
    let v = check_json_with(&c0, &["--verify"], &vcap);
    assert_eq!(counts(&v), (true, true, 10, 10, 10, 10), "{v:#}");
    // One byte flipped in the middle of one share on node5's disk: a
    // check does not read shares and sees nothing; verify lists that
    // share, and the file still downloads right.
    let share = walk(&g.clients[5].join("storage/shares"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&si))
        .expect("node5 holds a share of the file");
    let mut bytes = std::fs::read(&share).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&share, &bytes).unwrap();
    assert_eq!(counts(&check_json(&c0, &chk)).2, 10);
    let v = check_json_with(&c0, &["--verify"], &vcap);
    assert_eq!(counts(&v), (false, true, 9, 9, 9, 10), "{v:#}");
    assert_eq!(v["results"]["count-corrupt-shares"], 1);
    let shnum: u64 = share
        .file_name()
        .unwrap()
        .to_string_lossy()
        .parse()
        .unwrap();
    assert_eq!(v["results"]["list-corrupt-shares"][0][1], si.as_str());
    assert_eq!(v["results"]["list-corrupt-shares"][0][2], shnum);
    assert!(g.get(&c0, &chk).unwrap() == std::fs::read(&big).unwrap());
    // Verify of a mutable file is refused, not answered with a check.
    let err = run_on(&c0, &["check", "--verify", &sdmf]).unwrap_err();
    assert!(err.contains("not carried out yet"), "{err}");
    bytes[mid] ^= 1;
    std::fs::write(&share, &bytes).unwrap();

    // Three servers go: seven shares are left, on seven servers.
    let gone: Vec<_> = g.clients[7..].to_owned();
    for c in &gone {
        g.stop(c);
    }
    let v = check_json(&c0, &chk);
    assert_eq!(counts(&v), (false, true, 7, 7, 7, 7), "{v:#}");
    assert_eq!(v["summary"], "Not Healthy: 7 shares (enc 3-of-10)");
    let v = check_json(&c0, &sdmf);
    assert_eq!(counts(&v), (false, true, 7, 7, 7, 7), "{v:#}");
    assert_eq!(v["summary"], "Unhealthy: 7 shares (enc 3-of-10)");
    let v = check_json(&c0, &dir);
    assert_eq!(counts(&v).2, 7, "{v:#}");

    // Their disks are lost; they come back empty. Seven good shares on
    // seven servers is the default threshold (happy): left alone; asked
    // for ten, repair makes the three missing shares again, on the three
    // empty servers, from the verify cap alone.
    for c in &gone {
        std::fs::remove_dir_all(c.join("storage/shares")).unwrap();
        g.start(c);
    }
    g.wait_known(&c0, 10);
    let v = check_json(&c0, &chk);
    assert_eq!(counts(&v), (false, true, 7, 7, 7, 10), "{v:#}");
    assert_eq!(v["results"]["needs-rebalancing"], true);
    let v = check_json_with(&c0, &["--repair"], &vcap);
    assert_eq!(v["repair-attempted"], false, "{v:#}");
    let v = check_json_with(&c0, &["--repair", "--repair-threshold", "10"], &vcap);
    assert_eq!(
        (&v["repair-attempted"], &v["repair-successful"]),
        (&true.into(), &true.into()),
        "{v:#}"
    );
    assert_eq!(counts(&v["pre-repair-results"]).2, 7);
    assert_eq!(
        counts(&v["post-repair-results"]),
        (true, true, 10, 10, 10, 10),
        "{v:#}"
    );
    assert_eq!(counts(&check_json(&c0, &chk)), (true, true, 10, 10, 10, 10));
    for c in &gone {
        assert_eq!(walk(&c.join("storage/shares")).len(), 1, "{}", c.display());
    }
    // Human lines, as Tahoe's CLI prints a repair.
    let out = run_on(&c0, &["check", "--repair", &chk]).unwrap();
    assert!(
        out.starts_with("Summary: healthy\n storage index: "),
        "{out}"
    );
    // Mutable files are not repaired yet: said, not pretended.
    let err = run_on(&c0, &["check", "--repair", &sdmf]).unwrap_err();
    assert!(err.contains("not carried out yet"), "{err}");

    // Eight gone: two shares, fewer than k. The check says so and exits
    // non-zero, after printing what it found; repair cannot help.
    let gone: Vec<_> = g.clients[2..].to_owned();
    for c in &gone {
        g.stop(c);
    }
    let o = tahoe(&["check", &chk, "-d", c0.to_str().unwrap()], &[], 120);
    assert!(!o.status.success(), "an unrecoverable file checked fine");
    assert!(
        text(&o.stdout).starts_with("Summary: Not Healthy: 2 shares (enc 3-of-10)\n"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("not recoverable"),
        "{}",
        text(&o.stderr)
    );
    let o = tahoe(
        &["check", "--repair", &chk, "-d", c0.to_str().unwrap()],
        &[],
        120,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stdout).contains(" repair failed\n"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stdout).contains("cannot repair: 2 good shares"),
        "{}",
        text(&o.stdout)
    );
    let o = tahoe(
        &["check", "--json", &sdmf, "-d", c0.to_str().unwrap()],
        &[],
        120,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((counts(&v).0, counts(&v).1), (false, false), "{v:#}");
    assert_eq!(v["results"]["count-recoverable-versions"], 0);
    assert_eq!(v["results"]["count-unrecoverable-versions"], 1);
    assert_eq!(
        v["summary"],
        "Unhealthy: some versions are unrecoverable no versions are recoverable"
    );
}
