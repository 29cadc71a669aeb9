//! `--dirs`: directory operations on our grid and (with `--tahoe`)
//! Tahoe-LAFS's, in turns; the peak RSS of the directory commands.

use std::path::Path;
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;

use crate::report::{curl, print_table};
use crate::setup::{Nodes, signal_all, tahoe_pids, timed};

pub fn run(root: &Path, gateway: &Path, nodes: &Nodes, tahoe_base: Option<&Path>) {
    use std::sync::Arc;
    use tahoe_core::client::mutable::key_pool::KeyPool;
    use tahoe_core::client::source::BytesSource;
    use tahoe_core::format::cap::{Cap, DirCap};
    use tahoe_core::format::dirnode::{Metadata, Node, Replace};
    use tahoe_core::format::ssk::MutableFormat;

    const RUNS: usize = 5;
    const BIG: usize = 10_000;
    const POOL: usize = 3;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt
        .block_on(tahoe::client::GridClient::open(gateway))
        .unwrap();
    let dirs = rt.block_on(session.dir_client(KeyPool::new(POOL))).unwrap();
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let tgw = "http://127.0.0.1:23300";
    let wait_pool = || {
        while dirs.mutable.keys.ready() < POOL {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Caps of 10,000 (made-up, well-formed) immutable files.
    let fake_cap = |i: u64| {
        let r = pseudo_random_bytes(50_000 + i, 48);
        format!(
            "URI:CHK:{}:{}:3:10:{}",
            tahoe_core::base32::encode(&r[..16]),
            tahoe_core::base32::encode(&r[16..]),
            1000 + i
        )
    };
    let names: Vec<String> = (0..BIG).map(|i| format!("file-{i:05}")).collect();
    let caps: Vec<String> = (0..BIG as u64).map(fake_cap).collect();
    let small = pseudo_random_bytes(1, 1000);
    let small_file = root.join("small");
    std::fs::write(&small_file, &small).unwrap();
    let ops = [
        "mkdir",
        "add a 1 kB file",
        "list 20 entries",
        "10k: list",
        "10k: add one",
        "10k: remove one",
    ];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    let mut big_cap = None;
    for run in 0..RUNS {
        signal_all(&tahoe_pids, libc::SIGSTOP);
        wait_pool();
        std::thread::sleep(Duration::from_millis(300));
        rt.block_on(async {
            let t = Instant::now();
            let d = dirs.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
            ours[0].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let data = pseudo_random_bytes(60_000 + run as u64, 1000);
            let cap = dirs
                .immutable
                .put(Arc::new(BytesSource(bytes::Bytes::from(data))))
                .await
                .unwrap();
            dirs.add(&d, "small", Node::from_cap(cap), None, Replace::Always)
                .await
                .unwrap();
            ours[1].push(t.elapsed().as_secs_f64());
            for (n, c) in names.iter().zip(&caps).take(19) {
                dirs.add(
                    &d,
                    n,
                    Node::from_cap(c.parse().unwrap()),
                    None,
                    Replace::Always,
                )
                .await
                .unwrap();
            }
            let t = Instant::now();
            let listing = dirs.read(&d).await.unwrap();
            let nodes: Vec<Node> = listing
                .entries()
                .map(|(n, e)| listing.node_of(n, e).unwrap())
                .collect();
            ours[2].push(t.elapsed().as_secs_f64());
            assert_eq!(nodes.len(), 20);
            if run == 0 {
                let children: Vec<(String, Node, Metadata)> = names
                    .iter()
                    .zip(&caps)
                    .map(|(n, c)| {
                        (
                            n.clone(),
                            Node::from_cap(c.parse().unwrap()),
                            Metadata::new(),
                        )
                    })
                    .collect();
                big_cap = Some(dirs.create(MutableFormat::Sdmf, children).await.unwrap());
            }
            let big = big_cap.clone().unwrap();
            let t = Instant::now();
            let listing = dirs.read(&big).await.unwrap();
            let n = listing
                .entries()
                .map(|(n, e)| listing.node_of(n, e).unwrap())
                .collect::<Vec<Node>>()
                .len();
            ours[3].push(t.elapsed().as_secs_f64());
            assert!(n >= BIG);
            let t = Instant::now();
            dirs.add(
                &big,
                "added",
                Node::from_cap(caps[0].parse().unwrap()),
                None,
                Replace::Never,
            )
            .await
            .unwrap();
            ours[4].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            dirs.remove(&big, "added").await.unwrap();
            ours[5].push(t.elapsed().as_secs_f64());
        });
        if tahoe_base.is_some() {
            wait_pool();
            signal_all(&ours_pids, libc::SIGSTOP);
            signal_all(&tahoe_pids, libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(500));
            let (t, d) = curl(&["-X", "POST", &format!("{tgw}/uri?t=mkdir")]);
            assert!(d.starts_with("URI:DIR2:"), "{d}");
            theirs[0].push(t);
            let data = root.join("tahoe-small");
            std::fs::write(&data, pseudo_random_bytes(70_000 + run as u64, 1000)).unwrap();
            theirs[1].push(
                curl(&[
                    "-T",
                    data.to_str().unwrap(),
                    &format!("{tgw}/uri/{d}/small"),
                ])
                .0,
            );
            for (n, c) in names.iter().zip(&caps).take(19) {
                curl(&[
                    "-X",
                    "PUT",
                    "--data-binary",
                    c,
                    &format!("{tgw}/uri/{d}/{n}?t=uri"),
                ]);
            }
            let (t, json) = curl(&[&format!("{tgw}/uri/{d}?t=json")]);
            assert!(json.contains("file-00018"), "{json}");
            theirs[2].push(t);
            static TAHOE_BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let tbig = TAHOE_BIG.get_or_init(|| {
                let mut children = serde_json::Map::new();
                for (n, c) in names.iter().zip(&caps) {
                    children.insert(n.clone(), serde_json::json!(["filenode", {"ro_uri": c}]));
                }
                let body = root.join("tahoe-children.json");
                std::fs::write(&body, serde_json::to_vec(&children).unwrap()).unwrap();
                let (_, cap) = curl(&[
                    "-X",
                    "POST",
                    "--data-binary",
                    &format!("@{}", body.display()),
                    &format!("{tgw}/uri?t=mkdir-with-children"),
                ]);
                assert!(cap.starts_with("URI:DIR2:"), "{cap}");
                cap
            });
            let (t, json) = curl(&[&format!("{tgw}/uri/{tbig}?t=json")]);
            assert!(json.contains("file-09999"));
            theirs[3].push(t);
            theirs[4].push(
                curl(&[
                    "-X",
                    "PUT",
                    "--data-binary",
                    &caps[0],
                    &format!("{tgw}/uri/{tbig}/added?t=uri"),
                ])
                .0,
            );
            theirs[5].push(curl(&["-X", "DELETE", &format!("{tgw}/uri/{tbig}/added")]).0);
            signal_all(&ours_pids, libc::SIGCONT);
        }
    }
    signal_all(&tahoe_pids, libc::SIGCONT);
    println!(
        "directories (SDMF, 3-of-10, 10 storage node processes; ours through a client keeping its \
         connections and a pool of {POOL} keys; Tahoe-LAFS 1.20 through its web API, curl's \
         time_total; the 10k directory holds CHK caps), median of {RUNS}:"
    );
    print_table(&ops, &ours, &theirs);
    // Whole `tahoe` processes on the 10,000-entry directory: time and
    // peak RSS of a listing, a link and an unlink.
    let big = Cap::Dir(big_cap.unwrap());
    let _: &DirCap = match &big {
        Cap::Dir(d) => d,
        _ => unreachable!(),
    };
    let g = gateway.to_str().unwrap();
    let target = format!("{big}/via-cli");
    for (what, args) in [
        (
            "tahoe ls --json (10k entries)",
            vec!["ls", "-d", g, "--json", &big.to_string()],
        ),
        (
            "tahoe put 1 kB into it",
            vec!["put", "-d", g, small_file.to_str().unwrap(), &target],
        ),
        ("tahoe rm from it", vec!["rm", "-d", g, &target]),
    ] {
        let (t, rss, _, _) = timed(&args);
        println!("{what}: {:.0} ms, peak RSS {} MiB", t * 1e3, rss / 1024);
    }
}
