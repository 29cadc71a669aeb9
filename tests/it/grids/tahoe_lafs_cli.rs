//! The real Tahoe-LAFS 1.20 command line against our web gateway.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tahoe_core::testing::{free_port, pseudo_random_bytes};
use testkit::{ProcessGrid, http, run_on, text, wait_listening};

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
    let mut g = ProcessGrid::new(10);
    // The gateway's port, written into BASEDIR/webport as the seed did.
    let port = free_port();
    let gw = g.clients[0].clone();
    std::fs::write(gw.join("webport"), format!("{port}\n")).unwrap();
    g.stop(&gw);
    g.start(&gw);
    let url = format!("http://127.0.0.1:{port}/");
    wait_listening(port);
    g.wait_connected(&gw, 10);
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
    // check: Tahoe's CLI prints what ours prints, from JSON of Tahoe's
    // shape (its own answer for a file of this grid's shape is in
    // tests/data/tahoe-check-chk.json).
    let checked = ok(&["check", "t:a.bin"]);
    assert_eq!(checked, run_on(&gw, &["check", cap.trim()]).unwrap());
    assert!(
        checked.starts_with("Summary: Healthy\n storage index: "),
        "{checked}"
    );
    assert!(
        checked.ends_with(" good-shares: 10 (encoding is 3-of-10)\n wrong-shares: 0\n"),
        "{checked}"
    );
    let raw: serde_json::Value = serde_json::from_str(&ok(&["check", "--raw", "t:a.bin"])).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(include_str!("../../data/tahoe-check-chk.json")).unwrap();
    same_shape(
        &raw,
        &theirs,
        &["needs-rebalancing", "servers-not-responding"],
    );
    for key in ["summary", "storage-index"] {
        assert!(raw[key].is_string(), "{raw:#}");
    }
    assert_eq!(raw["results"]["count-shares-good"], 10);
    assert_eq!(
        ok(&["check", litcap.trim()]),
        "Summary: Healthy (LIT)\n storage index: \n"
    );
    // Verify reads every share: the same lines for a sound file.
    assert_eq!(ok(&["check", "--verify", "t:a.bin"]), checked);
    // add-lease: the gateway uploaded the file, so its lease on each
    // server is renewed (one lease, a later expiry); another node's check
    // adds that node's own lease beside it.
    let si = raw["storage-index"].as_str().unwrap();
    let leases_at = |node: &Path| {
        let file = node
            .join("storage/shares")
            .join(&si[..2])
            .join(si)
            .join("leases");
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len() % 72, 0, "{}", file.display());
        bytes
            .chunks(72)
            .map(|l| u64::from_be_bytes(l[64..].try_into().unwrap()))
            .collect::<Vec<u64>>()
    };
    let before = leases_at(&g.clients[3]);
    assert_eq!(before.len(), 1, "{before:?}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ok(&["check", "--add-lease", "t:a.bin"]), checked);
    let after = leases_at(&g.clients[3]);
    assert!(
        after.len() == 1 && after[0] > before[0],
        "{before:?} {after:?}"
    );
    run_on(&g.clients[1], &["check", "--add-lease", cap.trim()]).unwrap();
    assert_eq!(leases_at(&g.clients[3]).len(), 2);
    assert_eq!(
        ok(&["check", "--verify", "--add-lease", "t:a.bin"]),
        checked
    );
    // Repair of a healthy file: Tahoe's CLI reads our JSON and prints
    // that it was healthy, with no repair attempted.
    let repaired = ok(&["check", "--repair", "t:a.bin"]);
    assert_eq!(
        repaired,
        checked.replacen("Summary: Healthy", "Summary: healthy", 1)
    );
    // Deep check and manifest: Tahoe's CLI reads our streams, and prints
    // what ours prints.
    let root_cap = ok(&["list-aliases"])
        .split_whitespace()
        .find(|w| w.starts_with("URI:DIR2:"))
        .unwrap()
        .to_string();
    let deep = ok(&["deep-check", "t:"]);
    assert_eq!(deep, run_on(&gw, &["deep-check", &root_cap]).unwrap());
    assert!(deep.ends_with(" healthy, 0 unhealthy\n"), "{deep}");
    for options in [
        &["--verify"][..],
        &["--add-lease"],
        &["--verify", "--add-lease"],
    ] {
        let tahoe: Vec<&str> = ["deep-check"]
            .iter()
            .chain(options)
            .chain(&["t:"])
            .copied()
            .collect();
        let ours: Vec<&str> = ["deep-check"]
            .iter()
            .chain(options)
            .chain(&[root_cap.as_str()])
            .copied()
            .collect();
        assert_eq!(ok(&tahoe), deep, "{options:?}");
        assert_eq!(run_on(&gw, &ours).unwrap(), deep, "{options:?}");
    }
    assert_eq!(
        ok(&["manifest", "t:"]),
        run_on(&gw, &["manifest", &root_cap]).unwrap()
    );
    assert_eq!(
        ok(&["manifest", "--storage-index", "t:"]),
        run_on(&gw, &["manifest", "--storage-index", &root_cap]).unwrap()
    );
    let raw = ok(&["deep-check", "--raw", "t:"]);
    let ours: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let theirs: Vec<serde_json::Value> = include_str!("../../data/tahoe-deep-check.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let extra = ["needs-rebalancing", "servers-not-responding"];
    same_shape(&ours[0], &theirs[0], &extra);
    let last = |v: &[serde_json::Value]| v.last().unwrap().clone();
    same_shape(&last(&ours), &last(&theirs), &extra);
    // Operations started by handle, with one server down so that every
    // object with shares is unhealthy: Tahoe's shapes
    // (tests/data/tahoe-start-*), our deep check's counts.
    let objects = ours
        .iter()
        .filter(|u| u["storage-index"] != "" && u["type"] != "stats")
        .count();
    let down = g.clients[9].clone();
    g.stop(&down);
    let start = |t: &str, handle: &str| {
        let path = format!("/uri/{root_cap}?t={t}&ophandle={handle}&output=JSON");
        let (st, headers, body) = http(port, "POST", &path, &[], b"");
        assert_eq!(st, 302, "{t}: {}", text(&body));
        assert_eq!(
            headers["location"],
            format!("/operations/{handle}?output=JSON")
        );
    };
    let poll = |handle: &str| -> serde_json::Value {
        for _ in 0..1200 {
            let path = format!("/operations/{handle}?t=status&output=JSON");
            let (st, _, body) = http(port, "GET", &path, &[], b"");
            assert_eq!(st, 200, "{}", text(&body));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["finished"] == true {
                return v;
            }
            assert_eq!(v, serde_json::json!({"finished": false}));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("operation {handle} did not finish");
    };
    let tahoe_data = |name: &str| -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    start("start-deep-check", "dc1");
    let v = poll("dc1");
    let theirs = tahoe_data("tahoe-start-deep-check.json");
    same_shape(&v, &theirs, &[]);
    assert_eq!(v["count-objects-checked"], objects, "{v:#}");
    assert_eq!(v["count-objects-unhealthy"], objects, "{v:#}");
    assert_eq!(v["count-objects-healthy"], 0, "{v:#}");
    let unhealthy = v["list-unhealthy-files"].as_array().unwrap();
    assert_eq!(unhealthy.len(), objects);
    let first = |v: &serde_json::Value| v["list-unhealthy-files"][0][1].clone();
    same_shape(&first(&v), &first(&theirs), &extra);
    assert_eq!(first(&v)["results"]["count-shares-good"], 9, "{v:#}");
    // For people: the counts and each unhealthy object with its summary.
    let (st, _, page) = http(port, "GET", "/operations/dc1", &[], b"");
    assert_eq!(st, 200);
    let page = text(&page);
    assert!(page.contains("<table id=\"deep-counts\">"), "{page}");
    assert!(
        page.contains(&format!(
            "<tr><th>objects unhealthy</th><td>{objects}</td></tr>"
        )),
        "{page}"
    );
    assert_eq!(
        page.matches("<li>").count(),
        objects,
        "one line per unhealthy object: {page}"
    );
    assert!(
        page.contains("<li>(the directory itself): Unhealthy: 9 shares (enc 3-of-10)</li>"),
        "{page}"
    );
    // The directory page's Deep check button starts one under a handle.
    let (st, _, page) = http(port, "GET", &format!("/uri/{root_cap}"), &[], b"");
    assert_eq!(st, 200);
    assert!(
        text(&page).contains("?t=start-deep-check&amp;ophandle=ui"),
        "{}",
        text(&page)
    );
    start("start-deep-check&repair=true", "dc2");
    let v = poll("dc2");
    let theirs = tahoe_data("tahoe-start-deep-check-repair.json");
    same_shape(&v, &theirs, &[]);
    same_shape(&first(&v), &first(&theirs), &extra);
    // Nine good shares on nine servers is above the threshold (happy):
    // nothing is repaired.
    assert_eq!(v["count-repairs-attempted"], 0, "{v:#}");
    assert_eq!(v["count-objects-unhealthy-post-repair"], objects, "{v:#}");
    g.start(&down);
    g.wait_connected(&gw, 10);
    start("start-manifest", "m1");
    let v = poll("m1");
    same_shape(&v, &tahoe_data("tahoe-start-manifest.json"), &[]);
    let (st, _, body) = http(port, "GET", "/operations/m1?output=text", &[], b"");
    assert_eq!(st, 200);
    let listed: Vec<String> = run_on(&gw, &["manifest", &root_cap])
        .unwrap()
        .lines()
        .map(|l| {
            let (cap, path) = l.split_once(' ').unwrap();
            format!("{path} {cap}")
        })
        .collect();
    assert_eq!(
        text(&body),
        format!("finished: yes\n{}\n", listed.join("\n"))
    );
    assert_eq!(v["manifest"].as_array().unwrap().len(), listed.len());
    // For people: a page; then released, and gone.
    let (st, headers, body) = http(port, "GET", "/operations/m1", &[], b"");
    assert_eq!(st, 200);
    assert!(headers["content-type"].starts_with("text/html"));
    assert!(
        text(&body).contains("<p id=\"finished\">Finished.</p>"),
        "{}",
        text(&body)
    );
    let (st, _, _) = http(
        port,
        "GET",
        "/operations/m1?output=JSON&release-after-complete=true",
        &[],
        b"",
    );
    assert_eq!(st, 200);
    let (st, _, _) = http(port, "GET", "/operations/m1?output=JSON", &[], b"");
    assert_eq!(st, 404);
    // Cancelled: answered once, then gone.
    let (st, _, _) = http(port, "POST", "/operations/dc1?t=cancel", &[], b"");
    assert_eq!(st, 200);
    let (st, _, _) = http(port, "POST", "/operations/dc1?t=cancel", &[], b"");
    assert_eq!(st, 404);
    // Bad requests: a deep check of a file, no handle, a handle in use,
    // an unknown t= on /operations/.
    let file = format!("/uri/{}?t=start-deep-check&ophandle=f1", cap.trim());
    let (st, _, body) = http(port, "POST", &file, &[], b"");
    assert_eq!(st, 400, "{}", text(&body));
    let (st, _, body) = http(
        port,
        "POST",
        &format!("/uri/{root_cap}?t=start-manifest"),
        &[],
        b"",
    );
    assert!(
        st == 400 && text(&body).contains("ophandle"),
        "{}",
        text(&body)
    );
    let (st, _, _) = http(
        port,
        "POST",
        &format!("/uri/{root_cap}?t=start-manifest&ophandle=dc2"),
        &[],
        b"",
    );
    assert_eq!(st, 400);
    let (st, _, _) = http(port, "GET", "/operations/dc2?t=cancel", &[], b"");
    assert_eq!(st, 400);

    // tahoe stats: an operation started by handle and polled; its counts
    // are the walk's (our deep check's last unit).
    let stats = ok(&["stats", "t:"]);
    // Ours prints what Tahoe's prints, to the byte.
    assert_eq!(run_on(&gw, &["stats", &root_cap]).unwrap(), stats);
    let counted = &last(&ours)["stats"];
    for key in [
        "count-files",
        "count-directories",
        "count-immutable-files",
        "count-literal-files",
    ] {
        let line = format!(" {key}: {}\n", counted[key]);
        assert!(stats.contains(&line), "{line:?} not in {stats}");
    }
    assert!(stats.starts_with("Counts and Total Sizes:\n"), "{stats}");
    assert!(stats.contains("Size Histogram:\n"), "{stats}");
    // The results page.
    let path = format!("/uri/{}?t=check", cap.trim());
    let (status, headers, body) = http(port, "POST", &path, &[], b"");
    assert_eq!(status, 200, "{}", text(&body));
    assert!(headers["content-type"].starts_with("text/html"));
    let page = text(&body);
    assert!(
        page.contains("<p id=\"summary\" class=\"healthy\">Healthy</p>"),
        "{page}"
    );
    assert_eq!(page.matches("<tr><td>").count(), 10, "one row per share");
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
    // A fuller tree: sizes over 1000 bytes, and gaps in the histogram.
    let stats = ok(&["stats", "t:"]);
    assert!(stats.contains("...\n"), "a gap in the histogram: {stats}");
    assert_eq!(run_on(&gw, &["stats", &root_cap]).unwrap(), stats);
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

/// `ours` has every key `theirs` has, each with a value of the same JSON
/// type, recursively through objects, and no others but `extra`.
fn same_shape(ours: &serde_json::Value, theirs: &serde_json::Value, extra: &[&str]) {
    use serde_json::Value;
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in t {
                let mine = o.get(k).unwrap_or_else(|| panic!("no {k:?} in {ours:#}"));
                // Maps keyed by data (share numbers) are compared as maps.
                if k != "sharemap" {
                    same_shape(mine, v, extra);
                }
            }
            for k in o.keys() {
                assert!(
                    t.contains_key(k) || extra.contains(&k.as_str()),
                    "{k:?} is not one of Tahoe's keys"
                );
            }
        }
        (o, t) => assert_eq!(
            std::mem::discriminant(o),
            std::mem::discriminant(t),
            "{o} is not of the type of Tahoe's {t}"
        ),
    }
}
