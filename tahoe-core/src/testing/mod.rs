//! Conformance suites, one per plugin kind, and helpers for plugin tests.
//!
//! A suite states a kind's contract as executable checks. Plugin crates run
//! them from their own tests, e.g. for a storage backend:
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     tahoe_core::testing::storage::run(|| async { Ok(my_backend()) }).await;
//! }
//! ```
//!
//! A suite is a list of named clauses (each module's `CLAUSES`), each
//! checked on its own: when some fail, the suite panics naming every one,
//! `clause "NAME" failed: MESSAGE`, after running them all.

pub mod cipher;
pub mod codec;
pub mod storage;
pub mod transport;

/// Deterministic pseudo-random bytes (splitmix64): test data that is the
/// same on every run without a dependency on a random-number crate.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A `kB` field of a process's `/proc/PID/status` (`pid` "self" for this
/// process), e.g. `VmHWM:` for its peak resident memory; 0 when unknown.
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a node a test
/// starts next.
///
/// Ports come from below the kernel's ephemeral range
/// (`ip_local_port_range`), one at a time from a counter that starts at
/// an offset made from the process id: a port asked of the kernel (`bind`
/// to port 0) is an ephemeral one, and between the moment it is released
/// and the moment the node binds it, any outgoing connection of the tests
/// running beside (or a node binding port 0) could take it, and the node
/// would fail to start. No port is handed out twice by one process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .min(65536);
    let (first, span) = (10_000u32, low.saturating_sub(10_000));
    if span >= 1_000 {
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..span {
            let port = first + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// All subsets of `0..n` of size `k`, in lexicographic order.
pub fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn rec(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            if n - i < k - cur.len() {
                break;
            }
            cur.push(i);
            rec(i + 1, n, k, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(0, n, k, &mut Vec::new(), &mut out);
    out
}

/// The shared library `lib{lib}.so` of a workspace package, built first:
/// see [`built`].
pub fn built_library(lib: &str) -> std::path::PathBuf {
    built(&format!("lib{lib}{}", std::env::consts::DLL_SUFFIX))
}

/// The artifact `file` (a path under the profile directory), built first
/// with `cargo build --profile test --workspace --lib --examples` (the
/// profile of the test binaries, so the libraries they were built from are
/// reused) into the running test binary's profile directory
/// (`target/debug`); from a bench binary (`target/release`), with
/// `--profile bench`. Tests of plugin libraries and examples run what this
/// returns; it panics, loudly, when cargo or the artifact is missing.
///
/// The selection is every workspace library and example, as `cargo test
/// --workspace` selected them (features unified over the whole workspace,
/// dev-dependencies included), so that after it everything is found built.
/// A narrower one (`-p tahoe-example-dirstore`, `-p tahoe --example
/// embed`) unifies features differently: it compiled the `tahoe` library
/// again in the middle of the test run, and since a shared library's file
/// name has no hash for cargo to keep two builds apart, its rebuild made
/// the next `cargo test` compile the `it` binary and the examples again
/// (minutes each, in CI).
pub fn built(file: &str) -> std::path::PathBuf {
    const WHAT: &[&str] = &["--workspace", "--lib", "--examples"];
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = std::process::Command::new(&cargo);
    // What cargo sets for the running test describes the test, not the
    // build: build scripts watching such variables would rebuild their
    // crates, and the next `cargo test` would rebuild them back.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let test_only = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["OUT_DIR", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR"].contains(&&*k);
        if test_only {
            cmd.env_remove(&*k);
        }
    }
    // The test binary is target/<dir>/deps/NAME.
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current exe: {e}"));
    let dir = exe
        .ancestors()
        .nth(2)
        .unwrap_or_else(|| panic!("{} is not under target/", exe.display()));
    let profile = if dir.ends_with("release") {
        "bench"
    } else {
        "test"
    };
    let status = cmd
        .args(["build", "--quiet", "--profile", profile])
        .args(WHAT)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{cargo} build {}`: {e}", WHAT.join(" ")));
    assert!(status.success(), "`cargo build {}` failed", WHAT.join(" "));
    let path = dir.join(file);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs a suite's clauses one by one, each on its own (a clause that
/// panics fails alone; the next still runs), and at the end panics naming
/// every clause that failed: `clause "NAME" failed: MESSAGE`.
pub(crate) struct Clauses {
    suite: &'static str,
    failed: Vec<String>,
}

impl Clauses {
    pub(crate) fn new(suite: &'static str) -> Clauses {
        Clauses {
            suite,
            failed: Vec::new(),
        }
    }

    /// Check clause `name` with `check`, which fails by panicking: its
    /// value, or `None` when it failed.
    pub(crate) fn check<T>(&mut self, name: &str, check: impl FnOnce() -> T) -> Option<T> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
        self.record(name, result)
    }

    /// [`Clauses::check`] for a check that is a future.
    pub(crate) async fn check_async<T>(
        &mut self,
        name: &str,
        check: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        use futures::FutureExt as _;
        let result = std::panic::AssertUnwindSafe(check).catch_unwind().await;
        self.record(name, result)
    }

    fn record<T>(&mut self, name: &str, result: std::thread::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a panic without a message)".to_string());
                self.failed
                    .push(format!("clause \"{name}\" failed: {message}"));
                None
            }
        }
    }

    /// Panic, naming every clause that failed, if any did.
    pub(crate) fn finish(self) {
        match self.failed.len() {
            0 => {}
            1 => panic!("{} conformance: {}", self.suite, self.failed[0]),
            n => panic!(
                "{} conformance: {n} clauses failed:\n{}",
                self.suite,
                self.failed.join("\n")
            ),
        }
    }
}
