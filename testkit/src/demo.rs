//! `tahoe demo` as a newcomer runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exe;

/// A running `tahoe demo`: its web port and what it printed up to
/// "Press Ctrl-C". Dropping it sends SIGINT (the demo stops its nodes on
/// it), then kills it after 15 s.
pub struct Demo {
    child: Child,
    /// The web UI's port (`--web-port`).
    pub web_port: u16,
    /// Every line printed before "Press Ctrl-C to stop.".
    pub printed: Vec<String>,
}

impl Demo {
    /// Start `tahoe demo --clients N --web-port PORT --dir DIR` and read
    /// its output until it says the grid is ready.
    pub fn start(dir: &Path, clients: usize, web_port: u16) -> Demo {
        let mut child = Command::new(exe())
            .args(["demo", "--clients", &clients.to_string()])
            .args(["--web-port", &web_port.to_string(), "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut demo = Demo {
            child,
            web_port,
            printed: Vec::new(),
        };
        for line in BufReader::new(out).lines() {
            let line = line.unwrap();
            if line.starts_with("Press Ctrl-C") {
                return demo;
            }
            demo.printed.push(line);
        }
        panic!("tahoe demo stopped early:\n{}", demo.printed.join("\n"));
    }

    /// The web UI's address as printed (with the node's token).
    pub fn web_ui(&self) -> String {
        self.printed
            .iter()
            .find_map(|l| l.strip_prefix("Web UI: "))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("tahoe demo printed its web UI's URL")
            .to_string()
    }

    /// The printed command lines: those that start with the `tahoe`
    /// binary's path, without their leading spaces and trailing comment.
    pub fn commands(&self) -> Vec<String> {
        let exe = exe();
        let exe = exe.to_str().unwrap();
        self.printed
            .iter()
            .map(|l| l.trim_start())
            .filter(|l| l.starts_with(exe))
            .map(|l| l.split(" # ").next().unwrap_or(l).trim_end().to_string())
            .collect()
    }
}

impl Drop for Demo {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
