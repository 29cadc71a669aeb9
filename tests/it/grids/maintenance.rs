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
    for port in &ports[..8] {
        let v = storage_json(*port);
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
