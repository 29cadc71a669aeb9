//! A grid of real `tahoe` processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{exe, signal, tahoe, text};

/// A grid of real `tahoe` processes on 127.0.0.1: a queen and `clients`
/// client nodes (each also a storage node), every one in its own base
/// directory under [`ProcessGrid::dir`], all killed when the grid is
/// dropped.
pub struct ProcessGrid {
    /// The temporary directory holding every base directory.
    pub dir: tempfile::TempDir,
    /// The queen's base directory.
    pub queen: PathBuf,
    /// The clients' base directories, in order (`node0`, `node1`, ...).
    pub clients: Vec<PathBuf>,
    /// The nodes running now, by base directory.
    pub running: BTreeMap<PathBuf, Child>,
}

/// The queen's `encoding.happy` (the default; tests do not change the
/// queen's): it publishes the shared drive once this many servers are up.
const QUEEN_HAPPY: usize = 7;

impl ProcessGrid {
    /// A queen and `clients` clients, every one started, the first knowing
    /// every storage node.
    pub fn new(clients: usize) -> ProcessGrid {
        ProcessGrid::with_config(clients, |_, _| String::new())
    }

    /// A grid whose client `i` (in base directory `dir`) has
    /// `extra(i, dir)` appended to its tahoe.toml (whose last table is
    /// `[storage]`) before it starts.
    pub fn with_config(clients: usize, extra: impl Fn(usize, &Path) -> String) -> ProcessGrid {
        let dir = tempfile::tempdir().unwrap();
        let queen = dir.path().join("queen");
        let o = tahoe(
            &["create-queen", "--basedir", queen.to_str().unwrap()],
            &[],
            30,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let url = std::fs::read_to_string(queen.join("introducer.url")).unwrap();
        let mut g = ProcessGrid {
            dir,
            queen: queen.clone(),
            clients: Vec::new(),
            running: BTreeMap::new(),
        };
        let vdrive = std::fs::read_to_string(queen.join("vdrive.cap")).unwrap();
        for i in 0..clients {
            let c = g.dir.path().join(format!("node{i}"));
            let nickname = format!("node{i}");
            let mut args = vec![
                "create-client",
                "--basedir",
                c.to_str().unwrap(),
                "--introducer",
                url.trim(),
                "--nickname",
                &nickname,
            ];
            // The shared drive's cap: copied into the first client's base
            // directory, as the seed did; given to the others at creation.
            if i == 0 {
                std::fs::create_dir_all(&c).unwrap();
                std::fs::write(c.join("vdrive.cap"), &vdrive).unwrap();
            } else {
                args.extend(["--vdrive", vdrive.trim()]);
            }
            let o = tahoe(&args, &[], 30);
            assert!(o.status.success(), "{}", text(&o.stderr));
            let config = c.join("tahoe.toml");
            let mut toml = std::fs::read_to_string(&config).unwrap();
            toml.push_str(&extra(i, &c));
            std::fs::write(&config, toml).unwrap();
            g.clients.push(c);
        }
        g.start(&queen);
        for c in g.clients.clone() {
            g.start(&c);
        }
        g.wait_connected(&g.clients[0].clone(), clients);
        if clients >= QUEEN_HAPPY {
            g.wait_published();
        }
        g
    }

    /// Wait until the queen has published the shared drive (it does once
    /// `happy` servers have announced): a test that links into `tahoe:`
    /// right after start must not race the publication.
    pub fn wait_published(&self) {
        let marker = self.queen.join("private/vdrive.published");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !marker.exists() {
            assert!(
                Instant::now() < deadline,
                "the queen did not publish the shared drive"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the node in `basedir` (its output to `test-run.log` there);
    /// returns once it has written its `status.json`.
    pub fn start(&mut self, basedir: &Path) {
        self.start_with(basedir, |_| {});
    }

    /// Start the node in `basedir` with its command shaped by `shape`
    /// first.
    pub fn start_with(&mut self, basedir: &Path, shape: impl FnOnce(&mut Command)) {
        let log = std::fs::File::create(basedir.join("test-run.log")).unwrap();
        let mut cmd = Command::new(exe());
        cmd.args(["run", "--basedir", basedir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        shape(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        // The deadline only guards against a hang: on a loaded 2-core CI
        // machine a start can take seconds. A node that exits is reported
        // at once, with what it said.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !basedir.join("status.json").exists() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(basedir.join("test-run.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "{} did not start ({}); the end of its log:\n{}",
                    basedir.display(),
                    exited.map_or("no status.json after 60 s".into(), |s| s.to_string()),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running.insert(basedir.to_path_buf(), child);
    }

    /// The node's `status.json`, or `Null` while there is none.
    pub fn status(&self, basedir: &Path) -> serde_json::Value {
        std::fs::read(basedir.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Wait until `client` knows `count` storage nodes (has their
    /// announcements), whether or not it could connect to them: for a
    /// server that is announced and never answers.
    pub fn wait_known(&self, client: &Path, count: usize) {
        self.wait_servers(client, "known_servers", count);
    }

    /// Wait until `client` is connected to `count` storage nodes (a node
    /// restarted stays known before it is reachable again: knowing is not
    /// enough).
    pub fn wait_connected(&self, client: &Path, count: usize) {
        self.wait_servers(client, "connected_servers", count);
    }

    /// Wait (30 s at most) until `field` of `client`'s status.json is at
    /// least `count`.
    fn wait_servers(&self, client: &Path, field: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.status(client)[field].as_u64().unwrap_or(0);
            if now as usize >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {field} is {now}, {count} wanted",
                client.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self, basedir: &Path) {
        let mut child = self.running.remove(basedir).unwrap();
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                basedir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!basedir.join("node.pid").exists(), "pid file left behind");
    }

    /// SIGKILL and reap: a crash.
    pub fn kill9(&mut self, basedir: &Path) {
        let mut child = self.running.remove(basedir).unwrap();
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        let _ = std::fs::remove_file(basedir.join("status.json"));
    }

    /// `tahoe put --basedir CLIENT FILE`: the cap, or the error.
    pub fn put(&self, client: &Path, file: &Path, env: &[(&str, &str)]) -> Result<String, String> {
        self.put_with(client, &[file.to_str().unwrap()], env)
    }

    /// `tahoe put --basedir CLIENT ARGS...`: standard output, or the error.
    pub fn put_with(
        &self,
        client: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut all = vec!["put", "--basedir", client.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = tahoe(&all, env, 120);
        if o.status.success() {
            Ok(text(&o.stdout).trim().to_string())
        } else {
            Err(text(&o.stderr))
        }
    }

    /// `tahoe get --basedir CLIENT CAP`: the contents, or the error.
    pub fn get(&self, client: &Path, cap: &str) -> Result<Vec<u8>, String> {
        let out = self.dir.path().join("download");
        let o = tahoe(
            &[
                "get",
                "--basedir",
                client.to_str().unwrap(),
                cap,
                out.to_str().unwrap(),
            ],
            &[],
            120,
        );
        if o.status.success() {
            Ok(std::fs::read(&out).unwrap())
        } else {
            Err(text(&o.stderr))
        }
    }

    /// A file `name` with `data` in the grid's directory.
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for ProcessGrid {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
