//! The node's S3 gateway, driven by real clients: boto3 (every call, the
//! ways of signing, two keys' roots, bad input: `s3_boto3.py`), `rclone
//! sync` and `check`, and restic's `init`, `backup`, `check --read-data`
//! and `restore`. One grid of real processes for all of them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tahoe_core::testing::{free_port, pseudo_random_bytes};
use testkit::{ProcessGrid, http, run_on, wait_listening, wait_shared_drive};

use super::{counter, make_tree, same_tree};

/// boto3, from the venv `make s3-deps` makes.
fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/s3-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: `make s3-deps` installs boto3 there",
        venv.display()
    );
    venv.to_string_lossy().into_owned()
}

/// Write `text` as the 0600 credentials file of the node in `node`, and
/// turn its gateway on at `port` with `extra` settings.
fn enable_s3(node: &Path, port: u16, creds: &str, extra: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(node.join("private/s3-credentials"))
        .unwrap();
    f.write_all(creds.as_bytes()).unwrap();
    let config = node.join("tahoe.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!("\n[s3]\nenabled = true\nport = {port}\n{extra}"));
    std::fs::write(&config, toml).unwrap();
}

#[test]
fn boto3_rclone_and_restic_use_the_grid_through_s3() {
    let (web, port, port2) = (free_port(), free_port(), free_port());
    let mut g = ProcessGrid::with_config(10, |i, _| {
        if i == 0 {
            format!("\n[web]\nport = {web}\n")
        } else {
            String::new()
        }
    });
    let node = g.clients[0].clone();
    let node2 = g.clients[1].clone();
    wait_shared_drive(&node);
    let work = g.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // Two keys with roots of their own on one gateway; a second gateway
    // whose abandoned multipart uploads expire after 2 s.
    let root1 = run_on(&node, &["mkdir"]).unwrap().trim().to_string();
    let root2 = run_on(&node, &["mkdir"]).unwrap().trim().to_string();
    let (key1, secret1) = ("AKIDTAHOEONE", "secret-one-0123456789");
    let (key2, secret2) = ("AKIDTAHOETWO", "secret-two-0123456789");
    enable_s3(
        &node,
        port,
        &format!("# test keys\n{key1} {secret1} {root1}\n{key2} {secret2} {root2}\n"),
        "",
    );
    enable_s3(
        &node2,
        port2,
        &format!("{key1} {secret1} {root1}\n"),
        "multipart_expiry_secs = 2\n",
    );
    for n in [&node, &node2] {
        g.stop(n);
        g.start(n);
    }
    wait_listening(port);
    wait_listening(port2);

    // boto3: every call.
    let endpoint = format!("http://127.0.0.1:{port}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/frontends/s3_boto3.py");
    let out = Command::new(python())
        .arg(&script)
        .env("ENDPOINT", &endpoint)
        .env("KEY1", key1)
        .env("SECRET1", secret1)
        .env("KEY2", key2)
        .env("SECRET2", secret2)
        .env("SPOOL", node.join("tmp"))
        .env("WEB", web.to_string())
        .env("ROOT1", &root1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("ALL OK 19"), "{stdout}");
    // What boto3 stored is on the grid under the key's root, as files.
    let listed = run_on(&node, &["ls", &format!("{root1}/alpha/docs")]).unwrap();
    assert_eq!(
        listed.split_whitespace().collect::<Vec<_>>(),
        ["a.bin", "good-md5"]
    );
    // ... and nothing of the second key's.
    assert!(run_on(&node, &["ls", &root1]).unwrap().trim() == "alpha");

    // An abandoned multipart upload is removed when it expires.
    let expiry = format!(
        r#"
import boto3, time, sys
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:{port2}", aws_access_key_id="{key1}",
                  aws_secret_access_key="{secret1}", region_name="us-east-1",
                  config=Config(s3={{"addressing_style": "path"}}))
uid = s3.create_multipart_upload(Bucket="alpha", Key="left")["UploadId"]
s3.upload_part(Bucket="alpha", Key="left", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
assert len(s3.list_multipart_uploads(Bucket="alpha")["Uploads"]) == 1
for _ in range(100):
    time.sleep(0.2)
    if not s3.list_multipart_uploads(Bucket="alpha").get("Uploads"):
        break
try:
    s3.list_parts(Bucket="alpha", Key="left", UploadId=uid)
    sys.exit("the abandoned upload is still there")
except ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchUpload", e
print("expired")
"#
    );
    let out = Command::new(python())
        .args(["-c", &expiry])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(node2.join("tmp/s3-uploads"))
            .unwrap()
            .count(),
        0
    );

    // rclone: a tree of 500 files up and back, `check` equal.
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
        ":s3,provider=Other,access_key_id={key1},secret_access_key={secret1},\
         endpoint='{endpoint}',region=us-east-1,force_path_style=true:rclone-bucket/many"
    );
    // Plain HTTP to loopback: a CA bundle named in the environment (some
    // machines set AWS_CA_BUNDLE) only makes rclone's AWS SDK fail.
    let rclone = |args: &[&str]| {
        let o = Command::new("rclone")
            .args(["--config", "/dev/null", "-q"])
            .args(args)
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap_or_else(|e| panic!("rclone could not run ({e}): `make fs-deps` installs it"));
        assert!(
            o.status.success(),
            "rclone {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    rclone(&["mkdir", &remote]);
    rclone(&["sync", many.to_str().unwrap(), &remote]);
    let down = work.join("many.back");
    rclone(&["sync", &remote, down.to_str().unwrap()]);
    same_tree(&many, &down);
    // `check` compares MD5s: the ETags the gateway keeps.
    rclone(&["check", many.to_str().unwrap(), &remote]);
    // A second sync has nothing to do.
    let again = Command::new("rclone")
        .args([
            "--config",
            "/dev/null",
            "-v",
            "sync",
            many.to_str().unwrap(),
            &remote,
        ])
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{log}");
    assert!(!log.contains("Copied"), "{log}");

    // restic: init, backup, check --read-data, restore, equal.
    let tree = work.join("restic-src");
    make_tree(&tree, 60, 3 << 20);
    let restic = |args: &[&str]| {
        let o = Command::new("restic")
            .args(args)
            .env(
                "RESTIC_REPOSITORY",
                format!("s3:{endpoint}/restic-bucket/repo"),
            )
            .env("RESTIC_PASSWORD", "correct horse battery staple")
            .env("AWS_ACCESS_KEY_ID", key1)
            .env("AWS_SECRET_ACCESS_KEY", secret1)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("RESTIC_CACHE_DIR", work.join("restic-cache"))
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap_or_else(|e| panic!("restic could not run ({e}): `make fs-deps` installs it"));
        assert!(
            o.status.success(),
            "restic {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    rclone(&[
        "mkdir",
        &remote.replace("rclone-bucket/many", "restic-bucket"),
    ]);
    restic(&["init"]);
    restic(&["backup", "--host", "test", tree.to_str().unwrap()]);
    let checked = restic(&["check", "--read-data"]);
    assert!(checked.contains("no errors were found"), "{checked}");
    let restored = work.join("restic-out");
    restic(&["restore", "latest", "--target", restored.to_str().unwrap()]);
    same_tree(&tree, &restored.join(tree.strip_prefix("/").unwrap()));

    // The operations page and statistics saw the S3 work.
    assert!(counter(web, "tahoe_counters_s3_upload_total") >= 500);
    assert!(counter(web, "tahoe_counters_s3_read_total") > 0);
    assert!(counter(web, "tahoe_counters_s3_upload_failed_total") > 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, page) = http(web, "GET", "/status", &[], b"");
        assert_eq!(status, 200);
        if String::from_utf8_lossy(&page).contains("s3: rclone-bucket/many/") {
            break;
        }
        assert!(Instant::now() < deadline, "no S3 operation on the page");
        std::thread::sleep(Duration::from_millis(100));
    }
}
