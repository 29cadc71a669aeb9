//! `--mutable`: MDMF operations on our grid and (with `--tahoe`)
//! Tahoe-LAFS's, in turns; then a 1 GiB MDMF file and the gateway's peak RSS.

use std::path::Path;
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;

use crate::report::{curl, print_table};
use crate::setup::{Nodes, signal_all, tahoe_pids, timed, write_random_file};

pub fn run(root: &Path, gateway: &Path, nodes: &Nodes, tahoe_base: Option<&Path>) {
    use std::sync::Arc;
    use tahoe_core::client::mutable::key_pool::KeyPool;
    use tahoe_core::client::source::BytesSource;
    use tahoe_core::format::ssk::MutableFormat;

    // `--runs N` for more (a profile wants a few hundred operations).
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    const POOL: usize = 2;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt
        .block_on(tahoe::client::GridClient::open(gateway))
        .unwrap();
    let client = rt
        .block_on(session.mutable_client(KeyPool::new(POOL)))
        .unwrap();
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let tgw = "http://127.0.0.1:23300";
    let ops = ["create", "read", "overwrite", "write 5 B at offset"];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let wait_pool = || {
        while client.keys.ready() < POOL {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for run in 0..runs {
        let a = pseudo_random_bytes(7_000 + run as u64, 1_000_000);
        let b = pseudo_random_bytes(8_000 + run as u64, 1_000_000);
        signal_all(&tahoe_pids, libc::SIGSTOP);
        wait_pool();
        std::thread::sleep(Duration::from_millis(300));
        rt.block_on(async {
            let t = Instant::now();
            let cap = client
                .create(
                    MutableFormat::Mdmf,
                    Arc::new(BytesSource(bytes::Bytes::from(a.clone()))),
                )
                .await
                .unwrap();
            ours[0].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let mut out = Vec::new();
            client
                .read(&cap.read_cap(), 0..u64::MAX, &mut out)
                .await
                .unwrap();
            ours[1].push(t.elapsed().as_secs_f64());
            assert!(out == a);
            let t = Instant::now();
            client
                .overwrite(&cap, Arc::new(BytesSource(bytes::Bytes::from(b.clone()))))
                .await
                .unwrap();
            ours[2].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            client
                .write_at(&cap, 500_000, bytes::Bytes::from_static(b"hello"))
                .await
                .unwrap();
            ours[3].push(t.elapsed().as_secs_f64());
            let mut out = Vec::new();
            client
                .read(&cap.read_cap(), 500_000..500_005, &mut out)
                .await
                .unwrap();
            assert_eq!(out, b"hello");
        });
        if tahoe_base.is_some() {
            // Our pool refills before Tahoe is measured, too.
            wait_pool();
            signal_all(&ours_pids, libc::SIGSTOP);
            signal_all(&tahoe_pids, libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(500));
            let fa = root.join("tahoe-a");
            let fb = root.join("tahoe-b");
            let five = root.join("five");
            std::fs::write(&fa, &a).unwrap();
            std::fs::write(&fb, &b).unwrap();
            std::fs::write(&five, b"hello").unwrap();
            let (t, cap) = curl(&[
                "-T",
                fa.to_str().unwrap(),
                &format!("{tgw}/uri?format=mdmf"),
            ]);
            assert!(cap.starts_with("URI:MDMF:"), "{cap}");
            theirs[0].push(t);
            let got = root.join("tahoe-got");
            let (t, _) = curl(&["-o", got.to_str().unwrap(), &format!("{tgw}/uri/{cap}")]);
            assert!(std::fs::read(&got).unwrap() == a);
            theirs[1].push(t);
            theirs[2].push(curl(&["-T", fb.to_str().unwrap(), &format!("{tgw}/uri/{cap}")]).0);
            theirs[3].push(
                curl(&[
                    "-T",
                    five.to_str().unwrap(),
                    &format!("{tgw}/uri/{cap}?offset=500000"),
                ])
                .0,
            );
            signal_all(&ours_pids, libc::SIGCONT);
        }
    }
    signal_all(&tahoe_pids, libc::SIGCONT);
    println!(
        "mutable (MDMF, 1 MB, 3-of-10, 10 storage node processes; ours through a client keeping its \
         connections and a pool of {POOL} keys; Tahoe-LAFS 1.20 through its web API, curl's time_total), median of {runs}:"
    );
    print_table(&ops, &ours, &theirs);
    if std::env::args().any(|a| a == "--quick") {
        return;
    }
    // 1 GiB MDMF through the command line: time and the gateway's peak
    // RSS, beside a 1 GiB CHK put of other bytes on the same grid.
    let file = root.join("big");
    write_random_file(&file, 1024, 8_000_000);
    let put = |format: &str| {
        timed(&[
            "put",
            "--basedir",
            gateway.to_str().unwrap(),
            "--format",
            format,
            file.to_str().unwrap(),
        ])
    };
    let (chk, rss, _, _) = put("chk");
    println!(
        "1 GiB CHK: tahoe put --format chk {:.1} s ({:.1} MB/s), peak RSS {} MiB",
        chk,
        1073.741824 / chk,
        rss / 1024
    );
    write_random_file(&file, 1024, 9_000_000);
    let (t, rss, _, cap) = put("mdmf");
    println!(
        "1 GiB MDMF: tahoe put --format mdmf {:.1} s ({:.1} MB/s), peak RSS {} MiB: {:.2}x the CHK put's time",
        t,
        1073.741824 / t,
        rss / 1024,
        t / chk
    );
    let (t, rss, _, _) = timed(&[
        "get",
        "--basedir",
        gateway.to_str().unwrap(),
        &cap,
        "/dev/null",
    ]);
    println!(
        "1 GiB MDMF: tahoe get {:.1} s ({:.1} MB/s), peak RSS {} MiB",
        t,
        1073.741824 / t,
        rss / 1024
    );
    let _ = std::fs::remove_file(&file);
}
