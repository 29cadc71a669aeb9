//! The command line on a grid: mutable files, the shared drive and the
//! file commands on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tahoe_core::testing::free_port;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::{Demo, ProcessGrid, run_on, text, wait_shared_drive};

use crate::EXE;

#[test]
fn mutable_files_from_the_command_line() {
    use tahoe_core::format::cap::Cap;
    let g = ProcessGrid::new(10);
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
    let g = ProcessGrid::new(10);
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

/// Every command `tahoe demo` prints runs as printed, in order, from a
/// directory holding `FILE` and `DIR` (README's quick start shows the same
/// lines), and does what its comment says: the mount line until Ctrl-C,
/// and the sftp and sshfs lines into its SFTP account.
#[test]
fn the_commands_tahoe_demo_prints_run_as_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = Demo::start(&tmp.path().join("grid"), 3, free_port());
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("DIR")).unwrap();
    let file = pseudo_random_bytes(7, 300_000);
    std::fs::write(work.join("FILE"), &file).unwrap();
    std::fs::write(work.join("DIR/inner"), b"inner file").unwrap();
    let commands = demo.commands();
    assert_eq!(commands.len(), 12, "{:#?}", demo.printed);
    let mut cap = None;
    for line in &commands {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| match (w, &cap) {
                ("CAP", Some(c)) => String::clone(c),
                _ => w.to_string(),
            })
            .collect();
        if words[3..] == ["mount", "MOUNTPOINT"] {
            // Runs until Ctrl-C: the mount shows what the commands before
            // it made, and Ctrl-C unmounts.
            let at = work.join("MOUNTPOINT");
            std::fs::create_dir_all(&at).unwrap();
            let child = Command::new(&words[0])
                .args(&words[1..])
                .current_dir(&work)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            crate::frontends::wait_mounted(&at, true);
            assert_eq!(std::fs::read(at.join("DIR/inner")).unwrap(), b"inner file");
            testkit::signal(&child, libc::SIGINT);
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", text(&o.stderr));
            crate::frontends::wait_mounted(&at, false);
            continue;
        }
        let out = Command::new(&words[0])
            .args(&words[1..])
            .current_dir(&work)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{line}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let args = words[3..].join(" ");
        match args.as_str() {
            "ls -l tahoe:docs" => assert!(stdout.lines().any(|l| l.ends_with(" FILE")), "{stdout}"),
            "put FILE" => {
                assert!(stdout.trim().starts_with("URI:CHK:"), "{stdout}");
                cap = Some(stdout.trim().to_string());
            }
            "put --mutable FILE" => assert!(stdout.trim().starts_with("URI:SSK:"), "{stdout}"),
            "status" => assert!(stdout.contains("queen:       connected"), "{stdout}"),
            _ => {}
        }
        if args.starts_with("get ") {
            assert!(std::fs::read(work.join("OUT")).unwrap() == file, "{line}");
            std::fs::remove_file(work.join("OUT")).unwrap();
        }
    }
    assert!(cap.is_some(), "`put FILE` ran before `get CAP OUT`");
    // What the directory commands left: DIR copied in, FILE moved out of
    // docs/ into new/ and removed there.
    let t = &commands[0][..commands[0].find(" put ").unwrap()];
    let ls = |path: &str| {
        let mut words = t.split_whitespace();
        let out = Command::new(words.next().unwrap())
            .args(words)
            .args(["ls", path])
            .output()
            .unwrap();
        assert!(out.status.success(), "ls {path}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(ls("tahoe:DIR"), "inner\n");
    assert_eq!(ls("tahoe:docs"), "");
    assert_eq!(ls("tahoe:new"), "");
    // The SFTP lines run as printed too: sftp with commands on its
    // input, sshfs on a directory MOUNTPOINT.
    let printed = |program: &str| -> Vec<String> {
        demo.printed
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(&format!("{program} ")))
            .unwrap_or_else(|| panic!("no {program} line in {:#?}", demo.printed))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let sftp = printed("sftp");
    let mut child = Command::new(&sftp[0])
        .args(&sftp[1..])
        .current_dir(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ls -1\nbye\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let listed = text(&o.stdout);
    assert!(listed.lines().any(|l| l.trim() == "DIR"), "{listed}");
    let sshfs = printed("sshfs");
    let o = Command::new(&sshfs[0])
        .args(&sshfs[1..])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let at = work.join("MOUNTPOINT");
    crate::frontends::wait_mounted(&at, true);
    assert_eq!(std::fs::read(at.join("DIR/inner")).unwrap(), b"inner file");
    let o = Command::new("fusermount3")
        .arg("-u")
        .arg(&at)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The S3 lines: the key exported and the endpoint printed reach the
    // shared drive's directories as buckets (boto3 in place of the AWS
    // CLI, which the tests do not install).
    let export = printed("export");
    let var = |name: &str| {
        export
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {export:?}"))
            .to_string()
    };
    let aws = printed("aws");
    assert_eq!(aws[1], "--endpoint-url", "{aws:?}");
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/s3-venv/bin/python");
    let o = Command::new(&python)
        .args([
            "-c",
            "import boto3, sys\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')\n\
             print([b['Name'] for b in s3.list_buckets()['Buckets']])\n\
             print(s3.get_object(Bucket='DIR', Key='inner')['Body'].read().decode())",
            &aws[2],
        ])
        .env("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", var("AWS_SECRET_ACCESS_KEY"))
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): `make s3-deps` installs boto3", python.display()));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("'DIR'") && out.contains("inner file"), "{out}");
}

/// `tahoe --version` names the version and the commit it was built from,
/// as git tells it for this checkout.
#[test]
fn the_version_names_the_commit() {
    let out = Command::new(EXE).arg("--version").output().unwrap();
    assert!(out.status.success());
    let shown = text(&out.stdout);
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("git could not run ({e})"));
    assert!(git.status.success(), "not a git checkout");
    let commit = text(&git.stdout).trim().to_string();
    assert_eq!(
        shown.trim(),
        format!("tahoe {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// `tahoe put`/`get` on a terminal: a progress bar with bytes, rate and
/// time left, run under `script` (a real pseudo-terminal); none with
/// `--quiet`, none when standard error is no terminal. `status`, `ls` and
/// `plugins` in JSON for scripts, saying what their text says.
#[test]
fn progress_on_a_terminal_and_json_for_scripts() {
    let g = ProcessGrid::new(10);
    let c0 = g.clients[0].clone();
    let f = g.file("big", &pseudo_random_bytes(9, 48 << 20));
    let on_terminal = |extra: &str| {
        let cmd = format!("{EXE} put {extra} -d {} {}", c0.display(), f.display());
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("script (util-linux) could not run: {e}"));
        assert!(o.status.success(), "{}", text(&o.stdout));
        text(&o.stdout)
    };
    let shown = on_terminal("");
    assert!(
        shown.contains("uploading") && shown.contains("MiB") && shown.contains("ETA"),
        "no progress bar on a terminal: {shown:?}"
    );
    assert!(shown.contains("URI:CHK:"), "{shown:?}");
    let quiet = on_terminal("--quiet");
    assert!(!quiet.contains("uploading"), "--quiet drew: {quiet:?}");
    assert!(quiet.contains("URI:CHK:"), "{quiet:?}");
    let o = testkit::tahoe(
        &["put", "-d", c0.to_str().unwrap(), f.to_str().unwrap()],
        &[],
        120,
    );
    assert!(o.status.success());
    assert!(
        !text(&o.stderr).contains("uploading"),
        "a progress bar without a terminal: {}",
        text(&o.stderr)
    );

    // status --json: the running node and the servers its text lists.
    let status: serde_json::Value =
        serde_json::from_str(&run_on(&c0, &["status", "--json"]).unwrap()).unwrap();
    assert_eq!(status["role"], "client");
    assert_eq!(status["running"], true);
    assert_eq!(status["known_servers"], 10);
    assert_eq!(status["connected_servers"], 10);
    assert_eq!(status["servers"].as_array().unwrap().len(), 10);
    let said = run_on(&c0, &["status"]).unwrap();
    assert!(
        said.contains("servers:     10 known, 10 connected"),
        "{said}"
    );
    assert!(said.contains(&format!(
        "node id:     {}",
        status["node_id"].as_str().unwrap()
    )));
    for s in status["servers"].as_array().unwrap() {
        assert!(said.contains(s["address"].as_str().unwrap()), "{said}");
    }
    let queen: serde_json::Value =
        serde_json::from_str(&run_on(&g.queen, &["status", "--json"]).unwrap()).unwrap();
    assert_eq!(queen["role"], "queen");

    // plugins --json: the plugins the text lists, and a node's choice.
    let o = testkit::tahoe(&["plugins", "--json"], &[], 30);
    let plugins: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = text(&testkit::tahoe(&["plugins"], &[], 30).stdout);
    let plugins = plugins["plugins"].as_array().unwrap();
    assert!(plugins.len() >= 9, "{plugins:?}");
    for p in plugins {
        assert!(listed.contains(p["name"].as_str().unwrap()), "{p}");
    }
    let o = testkit::tahoe(
        &["plugins", "--json", "--config", c0.to_str().unwrap()],
        &[],
        30,
    );
    let config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(config["encoding"]["k"], 3);
    assert_eq!(config["codec"], "crs");
    assert_eq!(config["storage"], "fs");

    // ls --json: Tahoe's shape, the entries the text lists.
    let ls: serde_json::Value =
        serde_json::from_str(&run_on(&c0, &["ls", "--json", "tahoe:"]).unwrap()).unwrap();
    assert_eq!(ls[0], "dirnode");
}
