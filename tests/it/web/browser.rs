//! The web UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against `tahoe demo` (a queen and three storage nodes
//! as real processes). Screenshots go to `target/tmp/browser/`, numbered
//! in the order they are taken.
//!
//! What app.js does (progress bars, drag and drop, copy buttons) is
//! checked as done by the script: a page that works without it must not
//! pass for one where it ran.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `make test` installs
//! them. Missing, this test fails and says so: it is never skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tahoe_core::testing::free_port;
use testkit::{Demo, http_json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills a child process (chromedriver) when dropped, SIGINT first.
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

/// A cap as the gateway's URLs spell it (every byte but letters and
/// digits percent-encoded).
fn enc(cap: &str) -> String {
    percent_encoding::utf8_percent_encode(cap, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Installed on a page before an upload starts: records every state of
/// the script's progress rows (`li` in `#upload-progress`: a name, a
/// `progress`, a `.state`) in sessionStorage, which outlives the reload
/// the script does once all are done. `window.__beforeReload` tells the
/// page apart from the reloaded one.
const WATCH_UPLOADS: &str = "
const list = document.querySelector('#upload-progress');
const log = [];
sessionStorage.setItem('uploads', '[]');
const snap = () => {
  log.push(Array.from(list.children).map(li => {
    const bar = li.querySelector('progress');
    const st = li.querySelector('.state');
    return {
      tag: li.tagName,
      name: li.firstElementChild ? li.firstElementChild.textContent : null,
      max: bar ? bar.max : null,
      value: bar ? bar.value : null,
      state: st ? st.textContent : null,
      cls: st ? st.className : null,
    };
  }));
  sessionStorage.setItem('uploads', JSON.stringify(log));
};
new MutationObserver(snap).observe(list, {
  childList: true, subtree: true, attributes: true, characterData: true,
});
window.__beforeReload = true;
return list.children.length;
";

/// Bytes of a file a script makes, the same as [`dropped_bytes`].
const DROPPED_LEN: usize = 5000;

fn dropped_bytes() -> Vec<u8> {
    (0..DROPPED_LEN)
        .map(|i| ((i * 31 + 7) & 255) as u8)
        .collect()
}

/// A minimal WebDriver client.
struct Browser {
    port: u16,
    session: String,
    shots: PathBuf,
    shot_no: std::cell::Cell<u32>,
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
        let (status, body) = http_json(port, "POST", "/session", Some(&caps));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "starting Chromium: {v}");
        // Only this run's screenshots.
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            port,
            session: v["value"]["sessionId"].as_str().unwrap().to_string(),
            shots,
            shot_no: std::cell::Cell::new(0),
            _driver: driver,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("/session/{}{path}", self.session);
        let (status, raw) = http_json(self.port, method, &url, body.as_ref());
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

    /// How many elements match now.
    fn count(&self, css: &str) -> usize {
        self.find_all(css).len()
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

    /// The rendered text ("" for a hidden element).
    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Whether the element is shown (WebDriver's "displayed").
    fn displayed(&self, css: &str) -> bool {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/displayed"), None)
            .as_bool()
            .unwrap()
    }

    fn js(&self, script: &str) -> Value {
        self.js_with(script, json!([]))
    }

    fn js_with(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn js_async_with(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// `document.querySelector(css)[prop]`.
    fn prop(&self, css: &str, prop: &str) -> Value {
        self.find(css);
        self.js_with(
            "return document.querySelector(arguments[0])[arguments[1]]",
            json!([css, prop]),
        )
    }

    /// The `data-name`s of the listing's rows, in order.
    fn names(&self) -> Value {
        self.find("#entries");
        self.js(
            "return Array.from(document.querySelectorAll('#entries tbody tr')).map(r => r.dataset.name)",
        )
    }

    /// A `dl`'s terms and descriptions, as pairs.
    fn facts(&self, css: &str) -> Value {
        self.find(css);
        self.js_with(
            "return Array.from(document.querySelectorAll(arguments[0] + ' > dt'))\
             .map(dt => [dt.textContent, dt.nextElementSibling.textContent])",
            json!([css]),
        )
    }

    /// The bytes behind a link's `href`, fetched by the page (so with its
    /// cookies and origin); a status other than 200 fails.
    fn download(&self, css: &str) -> Vec<u8> {
        self.find(css);
        let got = self.js_async_with(
            "const done = arguments[arguments.length - 1];\
             const a = document.querySelector(arguments[0]);\
             fetch(a.href).then(r => r.ok ? r.arrayBuffer() : Promise.reject('status ' + r.status))\
             .then(buf => {\
               const u = new Uint8Array(buf); let s = '';\
               for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);\
               done(btoa(s)); }).catch(e => done('error ' + e));",
            json!([css]),
        );
        let got = got.as_str().unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(got)
            .unwrap_or_else(|_| panic!("downloading {css}: {got}"))
    }

    /// Saves `NN-name.png`, numbered in order.
    fn screenshot(&self, name: &str) {
        let n = self.shot_no.get() + 1;
        self.shot_no.set(n);
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png).unwrap();
    }

    /// Wait until a script returns true; a script that returns a string
    /// instead says why it never will, and the test fails with it.
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let now = self.js(script);
            if now == json!(true) {
                return;
            }
            if let Some(failed) = now.as_str() {
                panic!("{what}: {failed}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the browser is at `url`, its page loaded.
    fn wait_at(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let now = self.js("return document.readyState === 'complete' ? location.href : ''");
            if now == json!(url) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {url}; at {now}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start recording the upload form's progress rows (see
    /// [`WATCH_UPLOADS`]).
    fn watch_uploads(&self) {
        assert_eq!(self.js(WATCH_UPLOADS), json!(0), "no upload rows yet");
    }

    /// Wait for the script's reload after the uploads, then check what its
    /// progress rows showed: for each `(name, size)`, in order, a row
    /// starting at `uploading` with an empty bar of the file's size, and
    /// ending `done` with its bar full.
    /// An upload that fails stops the script from reloading: the test
    /// then fails at once with what the row said.
    fn uploads_done(&self, files: &[(&str, usize)]) {
        self.wait_for(
            "the script's reload after the uploads",
            "if (window.__beforeReload === undefined && document.readyState === 'complete' \
             && document.querySelector('#entries') !== null) return true; \
             const bad = Array.from(document.querySelectorAll('#upload-progress .state.bad')) \
               .map(s => s.parentElement.firstElementChild.textContent + ': ' + s.textContent); \
             return bad.length ? 'an upload failed, so the script did not reload: ' + bad.join('; ') : false;",
        );
        let log: Value = serde_json::from_str(
            self.js("const s = sessionStorage.getItem('uploads'); sessionStorage.removeItem('uploads'); return s")
                .as_str()
                .expect("the upload log survived the reload"),
        )
        .unwrap();
        let log = log.as_array().unwrap();
        assert!(!log.is_empty(), "the script made no progress rows");
        let first = &log[0];
        let last = &log[log.len() - 1];
        let want_first: Vec<Value> = files
            .iter()
            .map(|(name, size)| {
                json!({"tag": "LI", "name": name, "max": size, "value": 0,
                       "state": "uploading", "cls": "state"})
            })
            .collect();
        assert_eq!(
            first,
            &json!(want_first),
            "the rows as the script made them"
        );
        let rows = last.as_array().unwrap();
        assert_eq!(rows.len(), files.len(), "{last}");
        for ((name, size), row) in files.iter().zip(rows) {
            assert_eq!(row["name"], json!(name), "{last}");
            assert_eq!(row["state"], json!("done"), "{name}: {log:?}");
            assert_eq!(row["cls"], json!("state ok"), "{name}: {row}");
            let max = row["max"].as_f64().unwrap();
            assert_eq!(row["value"].as_f64(), Some(max), "{name}'s bar is full");
            // The script's progress handler ran: the bar's max became the
            // request's size (the file and the form around it).
            assert!(max > *size as f64, "{name}: {row}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http_json(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// `tahoe demo` with three storage nodes; its web UI's address
/// (`http://127.0.0.1:PORT/`) and the one it printed, carrying the node's
/// web token.
fn demo(dir: &Path) -> (Demo, String, String) {
    let demo = Demo::start(dir, 3, free_port());
    let url = demo.web_ui();
    let base = format!("http://127.0.0.1:{}/", demo.web_port);
    let token = url
        .strip_prefix(&format!("{base}?token="))
        .unwrap_or_else(|| panic!("{url} is {base} with the node's token"));
    assert_eq!(token.len(), 52, "32 random bytes in base32: {url}");
    assert!(
        token
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)),
        "{url}"
    );
    (demo, base, url)
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
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_grid, base, token_url) = demo(&dir.path().join("grid"));
    let web_port: u16 = base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let b = Browser::start();

    // The welcome page without the node's web token: the shared drive's
    // cap is not shown.
    b.go(&base);
    b.find("#nickname");
    assert_eq!(b.url(), base);
    assert_eq!(b.count("#drive-hidden"), 1);
    assert_eq!(b.count("#shared-drive"), 0);
    assert_eq!(
        b.js("return document.documentElement.outerHTML.includes('URI:DIR2')"),
        json!(false),
        "no directory cap anywhere on the page"
    );
    b.screenshot("welcome-without-token");

    // The printed address: the token becomes a cookie and leaves the URL.
    b.go(&token_url);
    b.wait_at(&base);
    assert_eq!(b.url(), base, "the token is gone from the address");
    assert_eq!(b.count("#shared-drive"), 1);
    assert_eq!(b.count("#drive-hidden"), 0);
    assert_eq!(
        b.js("return document.cookie"),
        json!(""),
        "the cookie is HttpOnly"
    );

    // This node, the queen, every storage server.
    assert_eq!(b.text("#nickname"), "node0");
    assert_eq!(b.text("#queen span"), "connected");
    assert_eq!(b.prop("#queen span", "className"), json!("ok"));
    assert_eq!(b.count("#servers tbody tr"), 3);
    // Storage servers are connected in the background: the page says so
    // once they are (reloaded until then).
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.text("#servers-h") != "Storage servers (3 of 3 connected)" {
        assert!(
            Instant::now() < deadline,
            "servers not all connected: {}",
            b.text("#servers-h")
        );
        std::thread::sleep(Duration::from_millis(500));
        b.go(&base);
    }
    assert_eq!(
        b.js(
            "return Array.from(document.querySelectorAll('#servers tbody tr'))\
              .map(r => [r.cells[3].textContent, r.cells[3].className])"
        ),
        json!([
            ["connected", "ok"],
            ["connected", "ok"],
            ["connected", "ok"]
        ])
    );
    b.screenshot("welcome");

    // Follow the shared drive.
    let drive = b
        .prop("#shared-drive", "href")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        drive.starts_with(&format!("{base}uri/URI%3ADIR2%3A")),
        "{drive}"
    );
    b.click("#shared-drive");
    b.wait_at(&drive);
    assert_eq!(b.text("h1"), "Directory");
    assert_eq!(b.text("#entries caption"), "0 entries");
    assert_eq!(b.names(), json!([]));
    b.screenshot("shared-drive");

    // Upload two files through the form: the script sends each with a
    // progress bar, then reloads the listing.
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
    b.watch_uploads();
    b.click("#upload-button");
    b.uploads_done(&[("alpha.bin", 300_000), ("notes.txt", 18)]);
    assert_eq!(b.url(), drive);
    assert_eq!(b.names(), json!(["alpha.bin", "notes.txt"]));
    assert_eq!(b.count("#upload-progress li"), 0, "a fresh page");
    b.screenshot("uploaded");
    let row = "#entries tr[data-name='alpha.bin']";
    assert_eq!(b.text(&format!("{row} td:first-child")), "CHK");
    assert_eq!(b.text(&format!("{row} td.num")), "293.0 KiB");
    assert_eq!(
        b.text("#entries tr[data-name='notes.txt'] td:first-child"),
        "LIT"
    );

    // Download one through its link and compare the bytes.
    assert!(
        b.download(&format!("{row} a[download]")) == a_bytes,
        "the downloaded bytes differ"
    );

    // Its file page, with a copy button the script shows.
    b.click(&format!("{row} a[href$='t=info']"));
    b.wait_at(&format!("{drive}/{}?t=info", enc("alpha.bin")));
    assert_eq!(b.text("h1"), "alpha.bin");
    assert_eq!(
        b.facts("#info"),
        json!([
            ["Type", "CHK"],
            ["Format", "CHK"],
            ["Size", "293.0 KiB (300000 bytes)"],
            ["Mutable", "no"]
        ])
    );
    let alpha_cap = b.prop("#ro-cap", "value").as_str().unwrap().to_string();
    assert!(alpha_cap.starts_with("URI:CHK:"), "{alpha_cap}");
    assert_eq!(b.count("#rw-cap"), 0, "an immutable file has no write cap");
    let copy = "button[data-copy='ro-cap']";
    assert_eq!(b.prop(copy, "hidden"), json!(false), "the script shows it");
    assert!(b.displayed(copy));
    assert_eq!(b.text(copy), "Copy");
    b.click(copy);
    b.wait_for(
        "the copy button to say it copied",
        "return document.querySelector(\"button[data-copy='ro-cap']\").textContent === 'Copied'",
    );
    assert!(b.displayed(copy));
    assert_eq!(b.text(copy), "Copied");
    assert_eq!(
        b.js("const i = document.getElementById('ro-cap'); \
              return [i.selectionStart, i.selectionEnd]"),
        json!([0, alpha_cap.len()]),
        "the cap is selected"
    );
    b.screenshot("file-page-copied");
    // Check it from its page: the results page says it is healthy, with
    // a row per share (the demo's 3-of-3), and the welcome page lists it.
    b.click("#check-button");
    b.wait_for(
        "the check's results page",
        "return document.readyState === 'complete' && document.querySelector('#sharemap') !== null",
    );
    assert_eq!(b.text("#summary"), "Healthy");
    assert_eq!(
        b.count("#sharemap tr"),
        1 + 3,
        "a header and a row per share"
    );
    b.screenshot("checked");
    b.go(&base);
    let checks = b.text("#checks");
    assert!(
        checks.contains("check alpha.bin") && checks.contains("done: Healthy"),
        "{checks}"
    );

    // Drop a file on the upload form (a synthetic drop event carrying a
    // File): the script uploads it with a progress bar and reloads.
    b.go(&drive);
    let drop = "#upload-form [data-drop]";
    let hint = "#upload-form [data-drop] .hint";
    assert_eq!(b.prop(hint, "hidden"), json!(false), "the script shows it");
    assert!(b.displayed(hint));
    assert_eq!(b.text(hint), "or drop files here");
    b.watch_uploads();
    let events = b.js_with(
        "const drop = document.querySelector(arguments[0]);\
         const bytes = new Uint8Array(arguments[1]);\
         for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 255;\
         const dt = new DataTransfer();\
         dt.items.add(new File([bytes], 'dropped.bin', {type: 'application/octet-stream'}));\
         const over = new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: dt});\
         drop.dispatchEvent(over);\
         const wasOver = drop.classList.contains('over');\
         const ev = new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt});\
         drop.dispatchEvent(ev);\
         return [over.defaultPrevented, wasOver, ev.defaultPrevented, drop.classList.contains('over')]",
        json!([drop, DROPPED_LEN]),
    );
    assert_eq!(
        events,
        json!([true, true, true, false]),
        "dragover taken and marked, drop taken and unmarked"
    );
    b.uploads_done(&[("dropped.bin", DROPPED_LEN)]);
    assert_eq!(b.url(), drive);
    assert_eq!(b.names(), json!(["alpha.bin", "dropped.bin", "notes.txt"]));
    let row = "#entries tr[data-name='dropped.bin']";
    assert_eq!(b.text(&format!("{row} td:first-child")), "CHK");
    assert_eq!(b.text(&format!("{row} td.num")), "4.9 KiB");
    assert!(
        b.download(&format!("{row} a[download]")) == dropped_bytes(),
        "the dropped file's bytes differ"
    );
    b.screenshot("dropped");

    // Rename one.
    b.click("#entries tr[data-name='notes.txt'] details:nth-of-type(1) summary");
    b.type_into(
        "#entries tr[data-name='notes.txt'] input[name=to_name]",
        "renamed.txt",
    );
    b.click("#entries tr[data-name='notes.txt'] form.rename button");
    b.find("#entries tr[data-name='renamed.txt']");
    assert_eq!(
        b.names(),
        json!(["alpha.bin", "dropped.bin", "renamed.txt"])
    );
    b.screenshot("renamed");

    // Delete it: asked again before it goes.
    b.click("#entries tr[data-name='renamed.txt'] details:nth-of-type(2) summary");
    assert!(b.displayed("#entries tr[data-name='renamed.txt'] form.delete button"));
    b.screenshot("delete-confirm");
    b.click("#entries tr[data-name='renamed.txt'] form.delete button");
    b.wait_for(
        "the deleted entry gone",
        "return document.querySelector(\"#entries tr[data-name='renamed.txt']\") === null \
         && document.querySelector('#entries') !== null",
    );
    assert_eq!(b.names(), json!(["alpha.bin", "dropped.bin"]));
    b.screenshot("deleted");

    // A directory of more than a page, made through the web API as a
    // script would (no Origin, no cookie).
    let drive_path = &drive[base.len() - 1..];
    let mut children = serde_json::Map::new();
    for i in 0..205 {
        let data = format!("file {i:03}\n");
        children.insert(
            format!("entry-{i:03}"),
            json!(["filenode", {
                "ro_uri": format!("URI:LIT:{}", tahoe_core::base32::encode(data.as_bytes()))
            }]),
        );
    }
    let (status, made) = http_json(
        web_port,
        "POST",
        &format!("{drive_path}/big?t=mkdir-with-children"),
        Some(&Value::Object(children)),
    );
    let made = String::from_utf8(made).unwrap();
    assert_eq!(status, 200, "{made}");
    assert!(made.starts_with("URI:DIR2:"), "{made}");
    b.go(&drive);
    assert_eq!(b.names(), json!(["alpha.bin", "big", "dropped.bin"]));
    assert_eq!(b.text("#entries tr[data-name='big'] td:first-child"), "DIR");
    b.click("#entries tr[data-name='big'] a.name");
    let big = format!("{drive}/big");
    b.wait_at(&big);
    assert_eq!(b.text("h1"), "big");
    assert_eq!(b.prop("#rw-cap", "value"), json!(made));
    let big_ro = b.prop("#ro-cap", "value").as_str().unwrap().to_string();
    assert!(big_ro.starts_with("URI:DIR2-RO:"), "{big_ro}");
    let entries =
        |r: std::ops::Range<usize>| -> Value { r.map(|i| format!("entry-{i:03}")).collect() };
    assert_eq!(b.count("#entries tbody tr"), 200);
    assert_eq!(b.names(), entries(0..200));
    assert_eq!(b.text("#entries caption"), "205 entries, page 1 of 2");
    assert_eq!(b.text("nav.pages"), "page 1 of 2 next");
    assert_eq!(b.count("a[rel=prev]"), 0);
    let row = "#entries tr[data-name='entry-000']";
    assert_eq!(b.text(&format!("{row} td:first-child")), "LIT");
    assert_eq!(b.text(&format!("{row} td.num")), "9 B");
    b.screenshot("big-page-1");
    b.click("a[rel=next]");
    b.wait_at(&format!("{big}?page=2"));
    assert_eq!(b.count("#entries tbody tr"), 5);
    assert_eq!(b.names(), entries(200..205));
    assert_eq!(b.text("#entries caption"), "205 entries, page 2 of 2");
    assert_eq!(b.text("nav.pages"), "previous page 2 of 2");
    assert_eq!(b.count("a[rel=next]"), 0);
    assert_eq!(
        b.download("#entries tr[data-name='entry-204'] a[download]"),
        b"file 204\n"
    );
    b.screenshot("big-page-2");
    b.click("a[rel=prev]");
    b.wait_at(&format!("{big}?page=1"));
    assert_eq!(b.names(), entries(0..200));
    assert_eq!(b.text("#entries caption"), "205 entries, page 1 of 2");

    // Attach caps under new names: a file's and a read-only directory's.
    b.go(&drive);
    b.type_into("#attach-name", "alpha-link.bin");
    b.type_into("#attach-cap", &alpha_cap);
    b.click("#attach-form button");
    b.find("#entries tr[data-name='alpha-link.bin']");
    b.type_into("#attach-name", "big-ro");
    b.type_into("#attach-cap", &big_ro);
    b.click("#attach-form button");
    b.find("#entries tr[data-name='big-ro']");
    assert_eq!(b.url(), drive);
    assert_eq!(
        b.names(),
        json!([
            "alpha-link.bin",
            "alpha.bin",
            "big",
            "big-ro",
            "dropped.bin"
        ])
    );
    assert_eq!(
        b.js(
            "return Array.from(document.querySelectorAll('#entries tbody tr'))\
              .map(r => [r.cells[0].textContent, r.cells[2].textContent])"
        ),
        json!([
            ["CHK", "293.0 KiB"],
            ["CHK", "293.0 KiB"],
            ["DIR", ""],
            ["DIR-RO", ""],
            ["CHK", "4.9 KiB"]
        ])
    );
    assert!(
        b.download("#entries tr[data-name='alpha-link.bin'] a[download]") == a_bytes,
        "the attached file's bytes differ"
    );
    b.screenshot("attached");

    // Create a subdirectory and open it.
    b.type_into("#mkdir-name", "photos");
    b.click("#mkdir-form button");
    b.find("#entries tr[data-name='photos']");
    assert_eq!(
        b.text("#entries tr[data-name='photos'] td:first-child"),
        "DIR"
    );
    b.click("#entries tr[data-name='photos'] a.name");
    b.wait_at(&format!("{drive}/photos"));
    assert_eq!(b.text("h1"), "photos");
    assert_eq!(
        b.js("return Array.from(document.querySelectorAll('.crumbs li')).map(l => l.textContent)"),
        json!(["root", "photos"])
    );
    b.screenshot("subdirectory");

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
    b.wait_at(&format!("{drive}/photos/{}", enc("evil.html")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.js("return document.title"),
        json!("stored"),
        "the stored page's script ran"
    );
    b.screenshot("stored-html-sandboxed");

    // The welcome page's forms. Open a cap: the read-only directory.
    b.go(&base);
    b.type_into("#open-cap", &big_ro);
    b.click("#open-cap ~ button");
    b.wait_at(&format!("{base}uri/{}", enc(&big_ro)));
    assert_eq!(b.text("h1"), "Directory read-only");
    assert_eq!(b.text("#entries caption"), "205 entries, page 1 of 2");
    assert_eq!(b.count("#entries tbody tr"), 200);
    assert_eq!(b.count("#upload-form"), 0, "nothing to change here");
    b.screenshot("opened-cap");

    // Create a directory, MDMF: its page.
    b.go(&base);
    b.click("#new-format option[value=mdmf]");
    assert_eq!(b.prop("#new-format", "value"), json!("mdmf"));
    b.click("#new-format ~ button");
    b.wait_for(
        "the new directory's page",
        &format!(
            "return location.href.startsWith('{base}uri/URI%3ADIR2%2DMDMF%3A') \
             && document.readyState === 'complete'"
        ),
    );
    let new_dir = b.prop("#rw-cap", "value").as_str().unwrap().to_string();
    assert!(new_dir.starts_with("URI:DIR2-MDMF:"), "{new_dir}");
    assert_eq!(b.url(), format!("{base}uri/{}", enc(&new_dir)));
    assert_eq!(b.text("h1"), "Directory");
    assert_eq!(b.text("#entries caption"), "0 entries");
    assert_eq!(b.count("#upload-form"), 1, "a new directory is writable");
    b.screenshot("created-directory");

    // Upload a file linked nowhere: its file page.
    let loose: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let loose_path = files.path().join("loose.bin");
    std::fs::write(&loose_path, &loose).unwrap();
    b.go(&base);
    b.type_into("#welcome-file", &loose_path.display().to_string());
    b.click("#welcome-file ~ button");
    b.wait_for(
        "the uploaded file's page",
        &format!(
            "return location.href.startsWith('{base}uri/URI%3ACHK%3A') \
             && document.readyState === 'complete'"
        ),
    );
    let loose_cap = b.prop("#ro-cap", "value").as_str().unwrap().to_string();
    assert_eq!(b.url(), format!("{base}uri/{}?t=info", enc(&loose_cap)));
    assert_eq!(b.text("h1"), "File");
    assert_eq!(
        b.facts("#info"),
        json!([
            ["Type", "CHK"],
            ["Format", "CHK"],
            ["Size", "2.0 KiB (2000 bytes)"],
            ["Mutable", "no"]
        ])
    );
    assert!(
        b.download("#download") == loose,
        "the loose file's bytes differ"
    );
    b.screenshot("uploaded-unlinked");

    // A path nothing is served at.
    b.go(&format!("{base}no/such/page"));
    assert_eq!(b.text("h1"), "404 Not Found");
    assert_eq!(
        b.text("#error"),
        "not found: nothing is served at /no/such/page"
    );
    b.screenshot("not-found");

    // A page on another site posting a form to the gateway is refused.
    let evil_port = evil_site(format!("{base}uri?t=mkdir&redirect_to_result=true"));
    b.go(&format!("http://127.0.0.1:{evil_port}/"));
    b.wait_for(
        "the gateway's answer to the cross-site form",
        &format!("return location.href.startsWith('{base}')"),
    );
    b.find("#error");
    assert_eq!(
        b.url(),
        format!("{base}uri?t=mkdir&redirect_to_result=true")
    );
    assert_eq!(b.text("h1"), "403 Forbidden");
    assert_eq!(
        b.text("#error"),
        "permission denied: a request from another site's page cannot change anything here"
    );
    b.screenshot("cross-site-refused");
    eprintln!(
        "the web UI in Chromium: {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
