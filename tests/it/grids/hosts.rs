//! A grid across five hosts (network namespaces on one bridge, set up as
//! README's "A grid on several machines" says: [`testkit::hosts`]), whose
//! links are cut during an upload and a download, healed, and one of whose
//! hosts moves to a new address.
//!
//! Each host sends at most 100 Mbit/s (a token bucket), so that a transfer
//! of tens of MiB lasts seconds and a link can be cut in its middle; the
//! grid is [`HostGrid::lan`]'s (2-of-4, happy 3, a 5 s call budget).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;
use testkit::hosts::{HostGrid, Hosts};
use testkit::{exe, output_within, text};

/// The web gateway of host 1's node, which runs from start to end.
const WEB_PORT: u16 = 3456;

fn write(g: &HostGrid, name: &str, data: &[u8]) -> PathBuf {
    let p = g.dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// `tahoe ARGS -d C{i}` on host `i`, running in the background.
fn spawn(g: &HostGrid, i: usize, args: &[&str]) -> Child {
    g.hosts
        .command(i, exe())
        .args(args)
        .args(["-d", g.clients[i].to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until host `i` has sent `bytes` more than `from`, while `child`
/// (the transfer) still runs: the moment to cut a link in its middle.
fn wait_sent(g: &HostGrid, i: usize, from: u64, bytes: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while g.hosts.sent(i) < from + bytes {
        if child.try_wait().unwrap().is_some() {
            let o = child.stderr.take().map(std::io::read_to_string);
            panic!("the transfer ended before host {i} sent {bytes} bytes, nothing to cut: {o:?}");
        }
        assert!(
            Instant::now() < deadline,
            "host {i} never sent {bytes} bytes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The transfer's output, or its error; it must end within two minutes.
fn finish(child: Child) -> Result<String, String> {
    let o = output_within(child, 120, "a transfer");
    if o.status.success() {
        Ok(text(&o.stdout))
    } else {
        Err(text(&o.stderr))
    }
}

/// `tahoe put FILE TARGET` on host 1, with host `cut`'s cable pulled once
/// host 1 has sent 8 MiB of it: its output, or its error.
fn put_cutting(g: &HostGrid, file: &Path, target: &str, cut: usize) -> Result<String, String> {
    let from = g.hosts.sent(1);
    let mut put = spawn(g, 1, &["put", file.to_str().unwrap(), target]);
    wait_sent(g, 1, from, 8 << 20, &mut put);
    g.hosts.link_down(cut);
    finish(put)
}

fn listed(g: &HostGrid, i: usize) -> String {
    g.run(i, &["ls", "tahoe:"]).unwrap()
}

#[test]
fn a_grid_across_five_hosts_survives_cut_links_and_a_moved_host() {
    let hosts = Hosts::new(5);
    hosts.limit_rate(100);
    let mut g = HostGrid::lan(hosts, WEB_PORT);
    let node1_pid = std::fs::read_to_string(g.clients[1].join("node.pid")).unwrap();

    // Up from one host, down on another; a share on every storage host.
    let small = pseudo_random_bytes(1, 3 << 20);
    let f = write(&g, "small", &small);
    g.run(1, &["put", f.to_str().unwrap(), "tahoe:small.bin"])
        .unwrap();
    let out = g.dir.path().join("small.out");
    g.run(3, &["get", "tahoe:small.bin", out.to_str().unwrap()])
        .unwrap();
    assert!(
        std::fs::read(&out).unwrap() == small,
        "host 3 read other bytes"
    );
    for i in 1..5 {
        assert!(!g.share_files(i).is_empty(), "host {i} holds no share");
    }

    // Host 4's cable pulled during an upload from host 1: three hosts are
    // still happy, so it succeeds, linked and whole.
    let big = pseudo_random_bytes(2, 48 << 20);
    let f = write(&g, "big", &big);
    let cap =
        put_cutting(&g, &f, "tahoe:big.bin", 4).expect("an upload that lost one of four hosts");
    assert!(cap.trim().starts_with("URI:CHK:"), "{cap}");
    assert!(listed(&g, 2).contains("big.bin"));
    let out = g.dir.path().join("big.out");
    g.run(2, &["get", "tahoe:big.bin", out.to_str().unwrap()])
        .unwrap();
    assert!(
        std::fs::read(&out).unwrap() == big,
        "big.bin came back other"
    );

    // Host 3's cable too, during the next upload: two hosts left, fewer
    // than happy: the unhappy error, and nothing linked. Other bytes than
    // big.bin's: the same bytes converge on the shares big.bin left on
    // hosts 1-3, and an upload that finds its file happy sends nothing.
    let f = write(&g, "unhappy", &pseudo_random_bytes(5, 48 << 20));
    let e = put_cutting(&g, &f, "tahoe:unhappy.bin", 3)
        .expect_err("an upload left with two of four hosts");
    assert!(e.contains("unhappy"), "not the unhappy error: {e}");
    assert!(
        !listed(&g, 2).contains("unhappy.bin"),
        "a failed upload was linked"
    );
    // Host 1's node (its gateway) finds them gone as well.
    let f = write(&g, "while-down", &pseudo_random_bytes(3, 100_000));
    let e = g
        .web_put(1, WEB_PORT, &f)
        .expect_err("a gateway upload with two of four hosts");
    assert!(e.contains("unhappy"), "{e}");

    // Cables back: the running node uses both hosts again, not restarted.
    g.hosts.link_up(3);
    g.hosts.link_up(4);
    let healed = g.until_used(1, WEB_PORT, &[3, 4], "after the links came back");
    eprintln!("hosts 3 and 4 used again {healed:?} after their links came back");
    // Their links probed every 10 s at most (the backoff's cap).
    assert!(
        healed < Duration::from_secs(15),
        "hosts 3 and 4 were used again only {healed:?} after their links came back"
    );
    let f = write(&g, "after", &pseudo_random_bytes(4, 200_000));
    let before: Vec<_> = (1..5).map(|i| g.share_files(i).len()).collect();
    g.run(2, &["put", f.to_str().unwrap()]).unwrap();
    for i in 1..5 {
        assert!(
            g.share_files(i).len() > before[i - 1],
            "host {i} got no share of an upload after the heal"
        );
    }

    // A download on host 2 while the host sending it the most loses its
    // cable: the rest bring the file back whole.
    let f = write(&g, "big2", &big);
    let cap = g.run(1, &["put", f.to_str().unwrap()]).unwrap();
    let out = g.dir.path().join("big2.out");
    let from: Vec<u64> = (0..5).map(|i| g.hosts.sent(i)).collect();
    let mut get = spawn(&g, 2, &["get", cap.trim(), out.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let cut = loop {
        let busiest = [1usize, 3, 4]
            .into_iter()
            .max_by_key(|&i| g.hosts.sent(i) - from[i])
            .unwrap();
        if g.hosts.sent(busiest) - from[busiest] > 4 << 20 {
            break busiest;
        }
        assert!(
            get.try_wait().unwrap().is_none(),
            "the download ended uncut"
        );
        assert!(Instant::now() < deadline, "the download never got going");
        std::thread::sleep(Duration::from_millis(20));
    };
    g.hosts.link_down(cut);
    finish(get).unwrap_or_else(|e| panic!("download with host {cut} cut: {e}"));
    assert!(
        std::fs::read(&out).unwrap() == big,
        "the download with host {cut} cut came back other"
    );
    g.hosts.link_up(cut);

    // Host 4 moves: stopped, readdressed, its advertise changed, started.
    // It announces its new address; the running node on host 1 follows.
    let c4 = g.clients[4].clone();
    g.stop(4, &c4);
    g.hosts.move_to(4, 114);
    g.set_transport(4);
    g.start(4, &c4);
    let moved = g.until_used(1, WEB_PORT, &[4], "after host 4 moved");
    eprintln!("host 4 used at its new address {moved:?} after its restart");
    assert!(
        moved < Duration::from_secs(30),
        "host 4 was used at its new address only {moved:?} after its restart"
    );
    assert_eq!(
        std::fs::read_to_string(g.clients[1].join("node.pid")).unwrap(),
        node1_pid,
        "host 1's node was restarted"
    );
    let out = g.dir.path().join("small.out2");
    g.run(4, &["get", "tahoe:small.bin", out.to_str().unwrap()])
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == small);
}
