//! A local S3 server for tests: moto's server mode (from PyPI's
//! `moto[server]`), which speaks the S3 REST API with multipart uploads
//! and conditional writes (`If-Match`, `If-None-Match`). `make test`
//! installs it into `target/s3-venv` (`make s3-deps`); the tests fail,
//! loudly, when it is missing. It runs through
//! `scripts/s3-test-server.py`, which makes moto's conditional writes
//! atomic as S3's are (moto checks and then writes with nothing held in
//! between, so two racing writers could both win there and nowhere
//! else).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server on 127.0.0.1, stopped when dropped.
pub struct S3Server {
    /// Its port.
    pub port: u16,
    child: Child,
}

/// The server's program and its first arguments: `TAHOE_TEST_S3_SERVER`
/// (a program taking moto_server's `-H HOST -p PORT`), or the Python that
/// `make s3-deps` installs running `scripts/s3-test-server.py`.
fn server_command() -> (PathBuf, Vec<PathBuf>) {
    if let Ok(p) = std::env::var("TAHOE_TEST_S3_SERVER") {
        return (PathBuf::from(p), Vec::new());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    (
        root.join("target/s3-venv/bin/python"),
        vec![root.join("scripts/s3-test-server.py")],
    )
}

/// An Authorization header moto accepts (it verifies no signature).
const FAKE_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n";

impl S3Server {
    /// Start a server on a free port and wait until it answers.
    pub fn start() -> S3Server {
        let (program, first_args) = server_command();
        assert!(
            program.exists(),
            "no S3 server for the tests at {}: run `make s3-deps` (or set TAHOE_TEST_S3_SERVER)",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let child = Command::new(&program)
            .args(&first_args)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let server = S3Server { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/", b"").is_none() {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request with a made-up signature (moto wants one on deletes
    /// and checks none); the status code.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n{FAKE_AUTH}Connection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .ok()?;
        s.write_all(body).ok()?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).ok()?;
        let line = String::from_utf8_lossy(&reply);
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Make a bucket.
    pub fn create_bucket(&self, name: &str) {
        let status = self.request("PUT", &format!("/{name}"), b"");
        assert_eq!(status, Some(200), "creating bucket {name}");
    }

    /// Write `body` as the object `key` of `bucket`.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let status = self.request("PUT", &format!("/{bucket}/{key}"), body);
        assert_eq!(status, Some(200), "writing {bucket}/{key}");
    }

    /// Remove a bucket and everything in it (moto's reset of one bucket:
    /// its objects first, then the bucket).
    pub fn remove_bucket(&self, name: &str) {
        // List and delete the keys (at most 1000 per listing, repeated).
        for _ in 0..100 {
            let Some(keys) = self.keys(name) else { break };
            if keys.is_empty() {
                break;
            }
            for k in keys {
                let status = self.request("DELETE", &format!("/{name}/{k}"), b"");
                assert_eq!(status, Some(204), "deleting {name}/{k}");
            }
        }
        let status = self.request("DELETE", &format!("/{name}"), b"");
        assert_eq!(status, Some(204), "removing bucket {name}");
    }

    /// The keys in `bucket` (the first 1000).
    pub fn keys(&self, bucket: &str) -> Option<Vec<String>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            s,
            "GET /{bucket}?list-type=2 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        Some(
            reply
                .split("<Key>")
                .skip(1)
                .filter_map(|p| p.split("</Key>").next())
                .map(str::to_string)
                .collect(),
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
