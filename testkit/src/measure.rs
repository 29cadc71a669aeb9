//! Probes of processes (peak RSS, CPU) and medians of timings.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The peak resident memory of process `pid` (VmHWM), in bytes; it must
/// be known.
pub fn peak_rss(pid: u32) -> u64 {
    let kib = peak_rss_kib(&pid.to_string());
    assert!(kib > 0, "no VmHWM in /proc/{pid}/status");
    kib * 1024
}

/// The peak resident memory (VmHWM) of process `pid` ("self" for this
/// one), in KiB; 0 when unknown.
pub fn peak_rss_kib(pid: &str) -> u64 {
    tahoe_core::testing::proc_status_kib(pid, "VmHWM:")
}

/// CPU time (user and system) process `pid` ("self" for this one) has
/// used, in clock ticks (hundredths of a second); 0 when unknown.
pub fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses: utime
    // and stime are the 14th and 15th of the whole line.
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// [`cpu_ticks`] in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    cpu_ticks(pid) as f64 / 100.0
}

/// CPU time (user and system, every thread) this process has used, in
/// seconds, to the nanosecond the kernel accounts (`cpu_seconds("self")`
/// counts hundredths: too coarse for a piece of work of tens of
/// milliseconds).
#[allow(unsafe_code)]
pub fn own_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    assert!(ok, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The median of `v` (the upper one of an even count); `v` must not be
/// empty.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// `f` timed `runs` times: the median.
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// What [`run_measured`] saw of a process.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Wall-clock seconds from spawn to exit.
    pub secs: f64,
    /// Peak resident memory, in KiB.
    pub peak_rss_kib: u64,
    /// CPU seconds, user and system.
    pub cpu_secs: f64,
    /// Standard output, trimmed.
    pub stdout: String,
}

/// Run `exe ARGS...` to completion (standard error passed through), which
/// must succeed. The child is reaped with wait4(2), which also gives its
/// peak RSS and CPU time.
#[allow(unsafe_code, clippy::zombie_processes)]
pub fn run_measured(exe: &Path, args: &[&str]) -> Measured {
    let start = Instant::now();
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, written by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    assert_eq!(status, 0, "{} {} failed", exe.display(), args.join(" "));
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        secs: start.elapsed().as_secs_f64(),
        peak_rss_kib: usage.ru_maxrss as u64,
        cpu_secs: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        stdout: reader.join().unwrap().trim().to_string(),
    }
}
