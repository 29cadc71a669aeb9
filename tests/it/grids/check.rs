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
    // A CHK file of three segments, an SDMF and an MDMF file (three
    // segments), a directory, a LIT file.
    let big = g.file("big", &pseudo_random_bytes(31, 300_000));
    let chk = g.put(&c0, &big, &[]).unwrap();
    let sdmf = g
        .put_with(&c0, &["--mutable", big.to_str().unwrap()], &[])
        .unwrap();
    let mdmf = g
        .put_with(&c0, &["--format", "mdmf", big.to_str().unwrap()], &[])
        .unwrap();
    let dir = run_on(&c0, &["mkdir"]).unwrap().trim().to_string();
    let lit = g.put(&c0, &g.file("lit", b"tiny"), &[]).unwrap();
    assert!(lit.starts_with("URI:LIT:"), "{lit}");
    for cap in [&chk, &sdmf, &mdmf, &dir] {
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
    bytes[mid] ^= 1;
    std::fs::write(&share, &bytes).unwrap();
    // The same in the mutable files' shares on node5: verify lists it;
    // repair publishes the file again, which writes over the corrupt copy.
    for m in [&sdmf, &mdmf] {
        let si = check_json(&c0, m)["storage-index"]
            .as_str()
            .unwrap()
            .to_string();
        let slot = g.clients[5].join("storage/shares").join(&si[..2]).join(&si);
        let share = std::fs::read_dir(&slot)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".mutable"))
            .expect("node5 holds a share of the file");
        let mut bytes = std::fs::read(&share).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&share, &bytes).unwrap();
        assert_eq!(counts(&check_json(&c0, m)), (true, true, 10, 10, 10, 10));
        let v = check_json_with(&c0, &["--verify"], m);
        assert_eq!(counts(&v), (false, true, 9, 9, 9, 10), "{v:#}");
        let name = share.file_name().unwrap().to_string_lossy().to_string();
        let shnum: u64 = name.strip_suffix(".mutable").unwrap().parse().unwrap();
        assert_eq!(v["results"]["list-corrupt-shares"][0][2], shnum, "{v:#}");
        let v = check_json_with(
            &c0,
            &["--verify", "--repair", "--repair-threshold", "10"],
            m,
        );
        assert_eq!(v["repair-successful"], true, "{v:#}");
        let post = &v["post-repair-results"];
        assert_eq!(counts(post), (true, true, 10, 10, 10, 10), "{v:#}");
        assert_eq!(post["results"]["count-corrupt-shares"], 0, "{v:#}");
        assert_ne!(
            std::fs::read(&share).unwrap(),
            bytes,
            "the corrupt copy stayed"
        );
        assert!(g.get(&c0, m).unwrap() == std::fs::read(&big).unwrap());
    }

    // Three servers go: seven shares are left, on seven servers.
    let gone: Vec<_> = g.clients[7..].to_owned();
    for c in &gone {
        g.stop(c);
    }
    let v = check_json(&c0, &chk);
    assert_eq!(counts(&v), (false, true, 7, 7, 7, 7), "{v:#}");
    assert_eq!(v["summary"], "Not Healthy: 7 shares (enc 3-of-10)");
    for m in [&sdmf, &mdmf] {
        let v = check_json(&c0, m);
        assert_eq!(counts(&v), (false, true, 7, 7, 7, 7), "{v:#}");
        assert_eq!(v["summary"], "Unhealthy: 7 shares (enc 3-of-10)");
    }
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
    g.wait_connected(&c0, 10);
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
    // A mutable file is published again from its newest version, with
    // its write cap: the next sequence number, every share placed. Healthy,
    // it is left alone: checked and repaired ten times, its sequence
    // number stays.
    for m in [&sdmf, &mdmf] {
        let v = check_json_with(&c0, &["--repair", "--repair-threshold", "10"], m);
        assert_eq!(v["repair-attempted"], true, "{v:#}");
        assert_eq!(v["repair-successful"], true, "{v:#}");
        assert_eq!(
            counts(&v["post-repair-results"]),
            (true, true, 10, 10, 10, 10),
            "{v:#}"
        );
        let names = v["post-repair-results"]["results"]["sharemap"]
            .as_object()
            .unwrap();
        assert!(names.keys().all(|n| n.starts_with("seq3-")), "{names:?}");
        assert!(g.get(&c0, m).unwrap() == std::fs::read(&big).unwrap());
        for _ in 0..10 {
            let v = check_json_with(&c0, &["--repair"], m);
            assert_eq!(v["repair-attempted"], false, "{v:#}");
        }
        let v = check_json(&c0, m);
        let names = v["results"]["sharemap"].as_object().unwrap();
        assert!(names.keys().all(|n| n.starts_with("seq3-")), "{names:?}");
    }

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

#[test]
fn deep_check_and_manifest_walk_a_tree_once_each_and_repair_it() {
    let mut g = ProcessGrid::new(10);
    let c0 = g.clients[0].clone();
    let root = run_on(&c0, &["mkdir"]).unwrap().trim().to_string();
    let on = |args: &[&str]| run_on(&c0, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let a = g.file("a", &pseudo_random_bytes(41, 200_000));
    let b = g.file("b", &pseudo_random_bytes(42, 150_000));
    let tiny = g.file("tiny", b"tiny literal\n");
    on(&["put", a.to_str().unwrap(), &format!("{root}/a.bin")]);
    on(&["put", tiny.to_str().unwrap(), &format!("{root}/tiny")]);
    on(&["put", b.to_str().unwrap(), &format!("{root}/sub/b.bin")]);
    on(&["put", tiny.to_str().unwrap(), &format!("{root}/sub/tiny2")]);
    // A cycle: the root linked inside its own subdirectory.
    on(&["ln", &root, &format!("{root}/sub/up")]);
    // Each object once (the root is not walked again through sub/up);
    // literal files wherever they are linked, as Tahoe lists them.
    let manifest = on(&["manifest", &root]);
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        paths,
        ["", "a.bin", "sub", "tiny", "sub/b.bin", "sub/tiny2"],
        "{manifest}"
    );
    assert!(manifest.starts_with(&format!("{root} \n")), "{manifest}");
    let sis = on(&["manifest", "--storage-index", &root]);
    assert_eq!(sis.lines().count(), 4, "{sis}");
    assert!(sis.lines().all(|l| l.len() == 26), "{sis}");
    let verify = on(&["manifest", "--verify-cap", &root]);
    assert_eq!(verify.lines().count(), 4, "{verify}");
    assert!(verify.lines().all(|l| l.contains("-Verifier:")), "{verify}");
    assert_eq!(
        on(&["deep-check", &root]),
        "done: 6 objects checked, 6 healthy, 0 unhealthy\n"
    );
    let units: Vec<Value> = on(&["deep-check", "--json", &root])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(units.len(), 7);
    let stats = &units[6];
    assert_eq!(stats["type"], "stats");
    for (key, want) in [
        ("count-files", 4),
        ("count-immutable-files", 2),
        ("count-literal-files", 2),
        ("count-directories", 2),
        ("size-immutable-files", 350_000),
        ("size-literal-files", 26),
        ("largest-immutable-file", 200_000),
        ("largest-directory-children", 3),
    ] {
        assert_eq!(stats["stats"][key], want, "{key}: {stats:#}");
    }
    assert_eq!(
        stats["stats"]["size-files-histogram"],
        serde_json::json!([[11, 31, 2], [100_001, 316_227, 2]])
    );
    for u in &units[..6] {
        assert_eq!(u["check-results"]["results"]["healthy"], true, "{u:#}");
    }

    // Two disks lost, their servers back empty: every object with shares
    // is unhealthy; deep-check --repair remakes the files' shares and
    // publishes the directories again.
    let gone: Vec<_> = g.clients[8..].to_owned();
    for c in &gone {
        g.stop(c);
        std::fs::remove_dir_all(c.join("storage/shares")).unwrap();
        g.start(c);
    }
    g.wait_connected(&c0, 10);
    let checked = on(&["deep-check", &root]);
    assert!(
        checked.contains("'a.bin': Not Healthy: 8 shares (enc 3-of-10)\n"),
        "{checked}"
    );
    assert!(
        checked.ends_with("done: 6 objects checked, 2 healthy, 4 unhealthy\n"),
        "{checked}"
    );
    let repaired = on(&["deep-check", "--repair", "--repair-threshold", "10", &root]);
    assert!(
        repaired.ends_with(
            "done: 6 objects checked\n pre-repair: 2 healthy, 4 unhealthy\n \
             4 repairs attempted, 4 successful, 0 failed\n post-repair: 6 recoverable, 0 not recoverable\n"
        ),
        "{repaired}"
    );
    let checked = on(&["deep-check", "-v", &root]);
    assert!(checked.contains("'a.bin': healthy\n"), "{checked}");
    assert!(checked.contains("'sub/b.bin': healthy\n"), "{checked}");
    assert!(
        checked.ends_with("done: 6 objects checked, 6 healthy, 0 unhealthy\n"),
        "{checked}"
    );
}

/// Ten rounds of churn over real processes: two servers lose their disks
/// and come back empty each round. A tree that `deep-check --repair`
/// tends after every round stays whole, every file byte-identical; a tree
/// beside it that nobody repairs is lost to the same schedule.
#[test]
fn repair_keeps_a_tree_whole_through_churn_that_loses_one_left_alone() {
    let mut g = ProcessGrid::new(10);
    let c0 = g.clients[0].clone();
    let on = |args: &[&str]| run_on(&c0, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut trees = Vec::new();
    let mut files = Vec::new();
    for t in 0..2u64 {
        let root = on(&["mkdir"]).trim().to_string();
        let a = pseudo_random_bytes(50 + t, 120_000);
        let b = pseudo_random_bytes(60 + t, 40_000);
        on(&[
            "put",
            g.file("a", &a).to_str().unwrap(),
            &format!("{root}/a.bin"),
        ]);
        on(&[
            "put",
            g.file("b", &b).to_str().unwrap(),
            &format!("{root}/d/b.bin"),
        ]);
        let m = on(&["put", "--mutable", g.file("m", &b).to_str().unwrap()]);
        on(&["ln", m.trim(), &format!("{root}/d/m")]);
        files.push(vec![("a.bin", a), ("d/b.bin", b.clone()), ("d/m", b)]);
        trees.push(root);
    }
    let out = g.dir.path().join("churn-out");
    let whole = |root: &str, files: &[(&str, Vec<u8>)]| {
        files.iter().all(|(path, data)| {
            let o = tahoe(
                &[
                    "get",
                    &format!("{root}/{path}"),
                    out.to_str().unwrap(),
                    "-d",
                    c0.to_str().unwrap(),
                ],
                &[],
                120,
            );
            o.status.success() && std::fs::read(&out).unwrap() == *data
        })
    };
    let mut lost_at = None;
    for round in 0..10usize {
        for i in [1 + (2 * round) % 9, 1 + (2 * round + 1) % 9] {
            let c = g.clients[i].clone();
            g.stop(&c);
            std::fs::remove_dir_all(c.join("storage/shares")).unwrap();
            g.start(&c);
        }
        g.wait_connected(&c0, 10);
        on(&[
            "deep-check",
            "--repair",
            "--repair-threshold",
            "10",
            &trees[0],
        ]);
        assert!(
            whole(&trees[0], &files[0]),
            "the tended tree lost a file in round {round}"
        );
        if lost_at.is_none() && !whole(&trees[1], &files[1]) {
            lost_at = Some(round);
        }
    }
    let report = on(&["deep-check", &trees[0]]);
    assert_eq!(report, "done: 5 objects checked, 5 healthy, 0 unhealthy\n");
    // Eight of ten shares gone takes four rounds of two.
    assert_eq!(
        lost_at,
        Some(3),
        "the tree left alone was lost at round {lost_at:?}"
    );
}
