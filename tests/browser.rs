//! The web UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against `tahoe demo` (a queen and three storage nodes
//! as real processes). Screenshots go to `target/tmp/browser/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `make test` installs
//! them. Missing, this test fails and says so: it is never skipped.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tahoe_core::testing::free_port;

const EXE: &str = env!("CARGO_BIN_EXE_tahoe");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills a child process when dropped (SIGINT first: `tahoe demo` stops
/// its nodes on it).
struct Proc(Child);

impl Drop for Proc {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes (chromedriver
    // keeps connections open whatever the request says).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the response head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut rest = raw[split + 4..].to_vec();
    while rest.len() < len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the body's end");
        rest.extend_from_slice(&buf[..n]);
    }
    (status, rest)
}

/// A minimal WebDriver client.
struct Browser {
    port: u16,
    session: String,
    shots: PathBuf,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for exe in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(exe).exists(),
                "{exe} is missing: `make test` installs Debian's chromium and chromium-driver \
                 (apt-get install chromium chromium-driver)"
            );
        }
        let port = free_port();
        let driver = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let (status, body) = http(port, "POST", "/session", Some(&caps));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "starting Chromium: {v}");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            port,
            session: v["value"]["sessionId"].as_str().unwrap().to_string(),
            shots,
            _driver: driver,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("/session/{}{path}", self.session);
        let (status, raw) = http(self.port, method, &url, body.as_ref());
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.get(ELEMENT)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("not an element reference: {e}"))
                .to_string()
        })
        .collect()
    }

    /// The element, waiting up to 60 s for it to appear.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no {css} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        if !css.contains("file") {
            self.call("POST", &format!("/element/{e}/clear"), Some(json!({})));
        }
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn js_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Wait until a script returns true.
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.js(script) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// `tahoe demo` with three storage nodes; its web UI's URL.
fn demo(dir: &Path) -> (Proc, String) {
    let port = free_port();
    let mut child = Command::new(EXE)
        .args([
            "demo",
            "--clients",
            "3",
            "--web-port",
            &port.to_string(),
            "--dir",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let proc = Proc(child);
    let mut url = None;
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Web UI: ") {
            url = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let url = url.expect("tahoe demo printed its web UI's URL");
    assert_eq!(url, format!("http://127.0.0.1:{port}/"));
    (proc, url)
}

/// Serves one page from another origin (another port): a form that posts
/// to the gateway as soon as it loads.
fn evil_site(target: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let page = format!(
                "<!doctype html><form id=f method=post action=\"{target}\">\
                 <input name=name value=evil></form><script>f.submit()</script>"
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[test]
fn the_web_ui_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (_grid, base) = demo(&dir.path().join("grid"));
    let b = Browser::start();

    // The welcome page: this node, the queen, every storage server.
    b.go(&base);
    b.screenshot("01-welcome");
    assert_eq!(b.text("#nickname"), "node0");
    assert!(b.text("#queen").contains("connected"));
    b.wait_for(
        "three storage servers listed",
        "return document.querySelectorAll('#servers tbody tr').length === 3",
    );

    // Follow the shared drive.
    b.click("#shared-drive");
    b.find("#entries");
    assert!(b.url().contains("/uri/URI%3ADIR2%3A"), "{}", b.url());
    assert_eq!(b.text("h1"), "Directory");
    assert_eq!(b.find_all("#entries tbody tr").len(), 0);
    let drive = b.url();
    b.screenshot("02-shared-drive");

    // Upload two files through the form (the script sends each with a
    // progress bar, then reloads the listing).
    let files = tempfile::tempdir().unwrap();
    let a_bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let a = files.path().join("alpha.bin");
    let c = files.path().join("notes.txt");
    std::fs::write(&a, &a_bytes).unwrap();
    std::fs::write(&c, "two files at once\n").unwrap();
    b.type_into(
        "#upload-files",
        &format!("{}\n{}", a.display(), c.display()),
    );
    b.click("#upload-button");
    b.wait_for(
        "both uploads listed",
        "return document.querySelectorAll('#entries tr[data-name]').length === 2",
    );
    b.screenshot("03-uploaded");
    let names: Value = b.js(
        "return Array.from(document.querySelectorAll('#entries tr[data-name]')).map(r => r.dataset.name)",
    );
    assert_eq!(names, json!(["alpha.bin", "notes.txt"]));
    let row = "#entries tr[data-name='alpha.bin']";
    assert_eq!(b.text(&format!("{row} td:first-child")), "CHK");
    assert_eq!(b.text(&format!("{row} td.num")), "293.0 KiB");

    // Download one through its link and compare the bytes.
    let got = b.js_async(&format!(
        "const done = arguments[arguments.length - 1];\
         const a = document.querySelector(\"{row} a[download]\");\
         fetch(a.href).then(r => r.arrayBuffer()).then(buf => {{\
           const u = new Uint8Array(buf); let s = '';\
           for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);\
           done(btoa(s)); }}).catch(e => done('error ' + e));"
    ));
    use base64::Engine;
    let got = base64::engine::general_purpose::STANDARD
        .decode(got.as_str().unwrap())
        .unwrap();
    assert!(got == a_bytes, "the downloaded bytes differ");

    // Its file page.
    b.click(&format!("{row} a[href$='t=info']"));
    b.find("#info");
    assert!(
        b.text("#info").contains("300000 bytes"),
        "{}",
        b.text("#info")
    );
    assert!(
        b.js("return document.querySelector('#ro-cap').value.startsWith('URI:CHK:')")
            == json!(true)
    );
    b.screenshot("04-file-page");
    b.go(&drive);

    // Rename one.
    b.click("#entries tr[data-name='notes.txt'] details:nth-of-type(1) summary");
    b.type_into(
        "#entries tr[data-name='notes.txt'] input[name=to_name]",
        "renamed.txt",
    );
    b.click("#entries tr[data-name='notes.txt'] form.rename button");
    b.find("#entries tr[data-name='renamed.txt']");
    assert!(b.find_all("#entries tr[data-name='notes.txt']").is_empty());
    b.screenshot("05-renamed");

    // Delete it: asked again before it goes.
    b.click("#entries tr[data-name='renamed.txt'] details:nth-of-type(2) summary");
    b.screenshot("06-delete-confirm");
    b.click("#entries tr[data-name='renamed.txt'] form.delete button");
    b.wait_for(
        "the deleted entry gone",
        "return document.querySelector(\"#entries tr[data-name='renamed.txt']\") === null \
         && document.querySelector('#entries') !== null",
    );
    assert_eq!(b.find_all("#entries tr[data-name]").len(), 1);
    b.screenshot("07-deleted");

    // Create a subdirectory and open it.
    b.type_into("#mkdir-name", "photos");
    b.click("#mkdir-form button");
    b.find("#entries tr[data-name='photos']");
    assert_eq!(
        b.text("#entries tr[data-name='photos'] td:first-child"),
        "DIR"
    );
    b.click("#entries tr[data-name='photos'] a.name");
    b.find("#entries");
    assert_eq!(b.text("h1"), "photos");
    assert_eq!(
        b.js("return Array.from(document.querySelectorAll('.crumbs li')).map(l => l.textContent)"),
        json!(["root", "photos"])
    );
    b.screenshot("08-subdirectory");

    // A stored HTML file cannot run script with the gateway's origin.
    let evil = files.path().join("evil.html");
    std::fs::write(
        &evil,
        "<html><head><title>stored</title></head><body>\
         <script>document.title = 'ran: ' + document.cookie + location.href;</script></body></html>",
    )
    .unwrap();
    b.type_into("#upload-files", &evil.display().to_string());
    b.click("#upload-button");
    b.find("#entries tr[data-name='evil.html']");
    b.click("#entries tr[data-name='evil.html'] a.name");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.js("return document.title"),
        json!("stored"),
        "the stored page's script ran"
    );
    b.screenshot("09-stored-html-sandboxed");

    // A page on another site posting a form to the gateway is refused.
    let evil_port = evil_site(format!("{base}uri?t=mkdir&redirect_to_result=true"));
    b.go(&format!("http://127.0.0.1:{evil_port}/"));
    b.wait_for(
        "the gateway's answer to the cross-site form",
        &format!("return location.href.startsWith('{base}')"),
    );
    b.find("#error");
    assert!(b.text("h1").starts_with("403"), "{}", b.text("h1"));
    b.screenshot("10-cross-site-refused");
}
