//! `--hosts`: what real interfaces and a bridge cost. The same grid (a
//! queen and four storage nodes, 2-of-4, happy 3) on 127.0.0.1 and across
//! five network namespaces on one bridge (`testkit::hosts`, as README's "A
//! grid on several machines" sets it up; needs root): `tahoe put` on one
//! node and `tahoe get` on another of each size, medians of three runs in
//! turns; then how long after a pulled cable is plugged back the running
//! node on host 1 puts a share on that host again.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::ProcessGrid;
use testkit::hosts::{HostGrid, Hosts, LAN_CONFIG};
use testkit::median;

use crate::setup::write_random_file;

const WEB_PORT: u16 = 3456;

/// Seconds `cmd` took; it must succeed. Its standard output, trimmed.
fn time(mut cmd: Command) -> (f64, String) {
    let t = Instant::now();
    let o = cmd.output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (secs, String::from_utf8_lossy(&o.stdout).trim().to_string())
}

pub fn run(root: &Path, sizes: &[u64]) {
    let loopback = ProcessGrid::with_config(4, |_, _| LAN_CONFIG.to_string());
    let hosts = HostGrid::lan(Hosts::new(5), WEB_PORT);
    let tahoe = testkit::exe();
    // What `ip netns exec` adds to every command on a host.
    let exec: Vec<f64> = (0..5)
        .map(|_| {
            let mut c = hosts.hosts.command(1, "true");
            c.env_clear();
            time(c).0
        })
        .collect();
    println!(
        "grid: queen + 4 storage nodes, 2-of-4 (happy 3); put on node 1, get on node 3; \
         `ip netns exec` itself takes {:.1} ms (included)",
        median(exec) * 1e3
    );
    println!(
        "{:>8} {:>14} {:>14} {:>7} {:>14} {:>14} {:>7}",
        "size", "put loopback", "put hosts", "ratio", "get loopback", "get hosts", "ratio"
    );
    for &size in sizes {
        let (mut put_l, mut put_h, mut get_l, mut get_h) = (vec![], vec![], vec![], vec![]);
        for run in 0..3 {
            let file = root.join("input");
            write_random_file(&file, size, (size * 1000 + run) * 100_000);
            let f = file.to_str().unwrap();
            // Loopback.
            let mut c = Command::new(&tahoe);
            c.args(["put", f, "-d", loopback.clients[0].to_str().unwrap()]);
            let (t, cap) = time(c);
            put_l.push(t);
            let mut c = Command::new(&tahoe);
            c.args(["get", &cap, "/dev/null", "-d"])
                .arg(&loopback.clients[2]);
            get_l.push(time(c).0);
            // Across hosts.
            let mut c = hosts.hosts.command(1, &tahoe);
            c.args(["put", f, "-d", hosts.clients[1].to_str().unwrap()]);
            let (t, cap) = time(c);
            put_h.push(t);
            let mut c = hosts.hosts.command(3, &tahoe);
            c.args(["get", &cap, "/dev/null", "-d"])
                .arg(&hosts.clients[3]);
            get_h.push(time(c).0);
        }
        let rate = |v: &[f64]| (size << 20) as f64 / 1e6 / median(v.to_vec());
        let (pl, ph, gl, gh) = (rate(&put_l), rate(&put_h), rate(&get_l), rate(&get_h));
        println!(
            "{:>4} MiB {:>9.1} MB/s {:>9.1} MB/s {:>6.2}x {:>9.1} MB/s {:>9.1} MB/s {:>6.2}x",
            size,
            pl,
            ph,
            pl / ph,
            gl,
            gh,
            gl / gh
        );
    }
    // A cable pulled: host 1's node finds host 4 gone (a put through its
    // gateway, which succeeds on three hosts after host 4's deadline), the
    // cable is plugged back, and the node's next puts are watched for a
    // share on host 4.
    let mut back = Vec::new();
    for run in 0..3u64 {
        hosts.hosts.link_down(4);
        let f = root.join("while-down");
        std::fs::write(
            &f,
            tahoe_core::testing::pseudo_random_bytes(run + 77, 100_000),
        )
        .unwrap();
        hosts
            .web_put(1, WEB_PORT, &f)
            .expect("a put with one host of four gone");
        std::thread::sleep(Duration::from_secs(5));
        hosts.hosts.link_up(4);
        back.push(
            hosts
                .until_used(1, WEB_PORT, &[4], "after the cable came back")
                .as_secs_f64(),
        );
    }
    println!(
        "a pulled cable plugged back (after 5 s): host 4 used again by the running node in {:.2} s (median of 3: {:?})",
        median(back.clone()),
        back.iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
}
