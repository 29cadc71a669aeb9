//! A grid that keeps itself, in real processes with leases of seconds:
//! maintenance renews what the shared drive links and what `private/keep`
//! keeps, storage servers collect what nobody renews, and a server in
//! dry run only says what it would collect.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tahoe_core::client::check::CheckTarget;
use tahoe_core::format::cap::Cap;
use tahoe_core::testing::{free_port, pseudo_random_bytes};
use testkit::{ProcessGrid, http, run_on};

const LEASE: u64 = 4;
const GRACE: u64 = 2;

/// The share files of `cap` on `node` (fs backend layout).
fn shares_on(node: &Path, cap: &str) -> Vec<PathBuf> {
    let cap: Cap = cap.parse().unwrap();
    let si = CheckTarget::of(&cap).storage_index().unwrap().to_string();
    let dir = node.join("storage/shares").join(&si[..2]).join(&si);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(|c: char| c.is_ascii_digit())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn storage_json(port: u16) -> Value {
    let (status, _, body) = http(port, "GET", "/storage?t=json", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// `key` of `space-recovered`, summed over the crawler's history.
fn recovered(v: &Value, key: &str) -> u64 {
    v["lease-checker"]["history"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["space-recovered"][key].as_u64().unwrap())
        .sum()
}

#[test]
fn maintenance_keeps_what_is_reachable_and_servers_collect_the_rest() {
    let ports: Vec<u16> = (0..10).map(|_| free_port()).collect();
    let mut g = ProcessGrid::with_config(10, |i, _| {
        format!(
            "lease_duration = \"{LEASE}s\"\n\
             [storage.expire]\nenabled = true\ndry_run = {}\ngrace = \"{GRACE}s\"\n\
             [storage.crawler]\ncycle_interval = \"1s\"\ncpu_percent = 100\n\
             [web]\nport = {}\n\
             [maintenance]\nenabled = {}\ninterval = \"1s\"\njitter = 0\naudit = 0.5\n",
            i >= 8,
            ports[i],
            i == 0
        )
    });
    let c0 = g.clients[0].clone();
    let data = |seed| pseudo_random_bytes(seed, 20_000);
    let linked_file = g.file("linked", &data(1));
    let linked = g.put(&c0, &linked_file, &[]).unwrap();
    run_on(&c0, &["ln", &linked, "tahoe:linked.txt"]).unwrap();
    let kept = g
        .put_with(
            &c0,
            &["--keep", g.file("kept", &data(2)).to_str().unwrap()],
            &[],
        )
        .unwrap();
    let unlinked = g.put(&c0, &g.file("unlinked", &data(3)), &[]).unwrap();
    let keep = std::fs::read_to_string(c0.join("private/keep")).unwrap();
    assert_eq!(keep.trim(), kept, "tahoe put --keep wrote {keep:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(c0.join("private/keep"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let start = Instant::now();
    let live_before: Vec<Vec<PathBuf>> = g
        .clients
        .iter()
        .map(|n| [shares_on(n, &linked), shares_on(n, &kept)].concat())
        .collect();
    assert!(live_before.iter().all(|s| s.len() == 2), "{live_before:?}");
    for n in &g.clients {
        assert_eq!(shares_on(n, &unlinked).len(), 1);
    }
    // `tahoe debug leases` on a storage node: the uploader's lease.
    let out = run_on(&g.clients[3], &["debug", "leases", &unlinked]).unwrap();
    assert!(
        out.contains("share ") && out.contains("lease 1: expires"),
        "{out}"
    );

    // The unlinked file is collected on the servers not in dry run, after
    // its lease and the grace; the space shows as reclaimed there.
    let deadline = Instant::now() + Duration::from_secs(LEASE + GRACE + 30);
    while g.clients[..8]
        .iter()
        .any(|n| !shares_on(n, &unlinked).is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the unlinked file's shares were never collected"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        start.elapsed() >= Duration::from_secs(LEASE),
        "collected before its lease ended"
    );
    // A cycle's counts are published when the cycle ends, a moment after
    // its deletions: wait for that moment.
    for port in &ports[..8] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let v = loop {
            let v = storage_json(*port);
            if recovered(&v, "actual-shares-immutable") >= 1 || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(recovered(&v, "actual-shares-immutable") >= 1, "{v:#}");
        assert!(recovered(&v, "actual-sharebytes") > 0, "{v:#}");
    }
    // Dry run: the shares stay, and the report names what would go.
    let si = CheckTarget::of(&unlinked.parse().unwrap())
        .storage_index()
        .unwrap()
        .to_string();
    for (n, port) in g.clients[8..].iter().zip(&ports[8..]) {
        assert_eq!(
            shares_on(n, &unlinked).len(),
            1,
            "a dry run deleted a share"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(n.join("test-run.log")).unwrap();
            if log.contains("dry run: would reclaim") && log.contains(&si) {
                break;
            }
            assert!(Instant::now() < deadline, "the dry run never named {si}");
            std::thread::sleep(Duration::from_millis(200));
        }
        let v = storage_json(*port);
        assert!(recovered(&v, "configured-shares") >= 1, "{v:#}");
        assert_eq!(recovered(&v, "actual-shares"), 0, "{v:#}");
    }

    // Ten lease periods in all: the linked and the kept file live on,
    // every one of their shares where it was.
    while start.elapsed() < Duration::from_secs(10 * LEASE) {
        std::thread::sleep(Duration::from_millis(500));
        let live: Vec<Vec<PathBuf>> = g
            .clients
            .iter()
            .map(|n| [shares_on(n, &linked), shares_on(n, &kept)].concat())
            .collect();
        assert_eq!(live, live_before, "a live share was deleted");
    }
    assert_eq!(g.get(&c0, "tahoe:linked.txt").unwrap(), data(1));
    assert_eq!(g.get(&c0, &kept).unwrap(), data(2));
    assert!(
        g.get(&c0, &unlinked).is_err(),
        "the unlinked file is still recoverable"
    );

    // What the client shows: cycles done, leases renewed, nothing wrong.
    let (status, _, body) = http(ports[0], "GET", "/", &[], b"");
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("id=\"maintenance\""), "{page}");
    assert!(page.contains("leases renewed"), "{page}");
    assert!(!page.contains("OVERDUE"), "{page}");
    // Node 0 stores shares too: its storage section.
    assert!(page.contains("id=\"storage-summary\""), "{page}");
    assert!(page.contains("shares held:"), "{page}");
    let (status, _, metrics) = http(ports[0], "GET", "/statistics?t=openmetrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("tahoe_stats_maintenance_overdue 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tahoe_stats_maintenance_leases_renewed 30\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tahoe_stats_lease_checker_shares_reclaimed "),
        "{metrics}"
    );
    let state: Value =
        serde_json::from_slice(&std::fs::read(c0.join("maintenance/state.json")).unwrap()).unwrap();
    let last = &state["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["complete"], true, "{state:#}");
    // The shared drive (reached as alias `tahoe` and as the shared
    // drive: checked once), linked.txt, the kept file; 10 servers each.
    assert_eq!(last["objects_checked"], 3, "{state:#}");
    assert_eq!(last["leases_renewed"], 30, "{state:#}");
    let status_out = run_on(&c0, &["status"]).unwrap();
    assert!(status_out.contains("last cycle:"), "{status_out}");
    assert!(status_out.contains("shares held:"), "{status_out}");

    // Maintenance that stops is noticed: with the node down for more than
    // twice the interval, `tahoe status` says it is overdue.
    g.stop(&c0);
    std::thread::sleep(Duration::from_secs(3));
    let status_out = run_on(&c0, &["status"]).unwrap();
    assert!(status_out.contains("OVERDUE"), "{status_out}");
}

/// One share of storage index `si` on the stopped node in `node`, with
/// `leases` as the raw lease file (`None`: no lease file).
fn plant(node: &Path, si: [u8; 16], leases: Option<Vec<u8>>) {
    let si = tahoe_core::kinds::storage::StorageIndex(si).to_string();
    let dir = node.join("storage/shares").join(&si[..2]).join(&si);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0"), vec![7u8; 100]).unwrap();
    if let Some(l) = leases {
        std::fs::write(dir.join("leases"), l).unwrap();
    }
}

/// One fs-backend lease record expiring at `at`.
fn lease_record(n: u8, at: u64) -> Vec<u8> {
    [vec![n; 32], vec![n; 32], at.to_be_bytes().to_vec()].concat()
}

fn planted_dir(node: &Path, i: u32) -> PathBuf {
    let mut si = [0u8; 16];
    si[..4].copy_from_slice(&i.to_be_bytes());
    si[15] = 0x5a;
    let si = tahoe_core::kinds::storage::StorageIndex(si).to_string();
    node.join("storage/shares").join(&si[..2]).join(&si)
}

/// A crawler killed with -9 mid-cycle resumes its cycle from the position
/// it saved and finishes it; across the crash it deletes exactly the
/// shares whose leases are over, never one with a live lease, a malformed
/// lease file, a far-future lease or no lease at all.
#[test]
fn a_crawler_killed_mid_cycle_resumes_and_never_deletes_a_live_share() {
    let port = free_port();
    let mut g = ProcessGrid::with_config(1, |_, _| {
        format!(
            "[storage.expire]\nenabled = true\ngrace = \"1h\"\n\
             [storage.crawler]\ncycle_interval = \"1h\"\ncpu_percent = 3\n\
             [web]\nport = {port}\n\
             [maintenance]\nenabled = false\n"
        )
    });
    let node = g.clients[0].clone();
    g.stop(&node);
    // Its first (empty) cycle is forgotten: the next start crawls at once.
    std::fs::remove_dir_all(node.join("crawler")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // 1000 storage indexes: what each should become.
    let kind = |i: u32| match i % 50 {
        0 => "malformed",
        1 => "far-future",
        2 => "no-lease",
        n if n % 2 == 0 => "expired",
        _ => "live",
    };
    for i in 0..1000u32 {
        let mut si = [0u8; 16];
        si[..4].copy_from_slice(&i.to_be_bytes());
        si[15] = 0x5a;
        let leases = match kind(i) {
            "malformed" => Some(vec![1u8; 10]),
            "far-future" => Some(lease_record(1, u64::MAX / 2)),
            "no-lease" => None,
            // A day past its expiry (the grace is an hour), renewed by a
            // second holder too long ago as well.
            "expired" => {
                Some([lease_record(1, now - 86_400), lease_record(2, now - 90_000)].concat())
            }
            _ => Some([lease_record(1, now - 86_400), lease_record(2, now + 86_400)].concat()),
        };
        plant(&node, si, leases);
    }
    g.start(&node);
    // Wait for the crawler to be part-way, then crash it.
    let state_file = node.join("crawler/state.json");
    let position = |state: &Value| state["current"]["position"].as_str().map(str::to_string);
    let deadline = Instant::now() + Duration::from_secs(60);
    let saved = loop {
        if let Ok(b) = std::fs::read(&state_file)
            && let Ok(v) = serde_json::from_slice::<Value>(&b)
            && position(&v).is_some()
            && v["current"]["counts"]["buckets"]["immutable"]
                .as_u64()
                .unwrap_or(0)
                >= 200
        {
            break v;
        }
        assert!(Instant::now() < deadline, "the crawler never got going");
        std::thread::sleep(Duration::from_millis(50));
    };
    g.kill9(&node);
    // Restarting truncates the log: keep what the first run said.
    let first_log = std::fs::read_to_string(node.join("test-run.log")).unwrap();
    let at_crash = std::fs::read(&state_file).unwrap();
    let at_crash: Value = serde_json::from_slice(&at_crash).unwrap();
    assert_eq!(at_crash["current"]["number"], 1);
    assert!(
        at_crash["history"].as_array().unwrap().is_empty(),
        "{saved:#}"
    );
    g.start(&node);
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let v = storage_json(port);
        if let Some(c) = v["tahoe-rs"]["crawler"]["history"]
            .as_array()
            .and_then(|h| h.first())
        {
            break c.clone();
        }
        // A restart resumes the cycle, never starts a new one.
        if let Some(n) = v["tahoe-rs"]["crawler"]["current"]["number"].as_u64() {
            assert_eq!(n, 1);
        }
        assert!(
            Instant::now() < deadline,
            "the resumed cycle never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(finished["number"], 1, "{finished:#}");
    // Only storage indexes examined after the crash count there, plus
    // those saved before it: at most the page cut short is missing.
    let examined = finished["counts"]["buckets"]["immutable"].as_u64().unwrap();
    assert!((900..=1000).contains(&examined), "{finished:#}");
    for i in 0..1000u32 {
        let has = planted_dir(&node, i).join("0").exists();
        let expect = kind(i) != "expired";
        assert_eq!(
            has,
            expect,
            "storage index {i} ({}): share present {has}",
            kind(i)
        );
    }
    let c = &finished["counts"];
    assert!(
        c["buckets_unreadable"].as_u64().unwrap() >= 15,
        "{finished:#}"
    );
    assert!(
        c["leases_far_future"].as_u64().unwrap() >= 15,
        "{finished:#}"
    );
    assert!(
        c["buckets_without_leases"].as_u64().unwrap() >= 15,
        "{finished:#}"
    );
    let log = first_log + &std::fs::read_to_string(node.join("test-run.log")).unwrap();
    assert!(
        log.contains("cannot be read"),
        "the malformed lease files were not reported"
    );
}
