//! `--web`: both web gateways driven with the same curl calls, in turns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tahoe_core::testing::pseudo_random_bytes;

use crate::report::{curl, first_body_byte, print_table};
use crate::setup::{Nodes, signal_all, start_gateway, tahoe_pids, write_random_file};

/// The web gateways side by side: the same curl calls against ours and
/// (with `tahoe_base`) Tahoe-LAFS's, in turns, the other grid frozen.
pub fn run(root: &Path, gateway: &Path, nodes: &mut Nodes, tahoe_base: Option<&Path>) {
    const RUNS: usize = 5;
    const BIG: usize = 10_000;
    const AT_ONCE: usize = 100;
    let ogw = start_gateway(gateway, nodes);
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let mut grids = vec![("ours", ogw, ours_pids.clone())];
    if tahoe_base.is_some() {
        grids.push((
            "tahoe",
            "http://127.0.0.1:23300".to_string(),
            tahoe_pids.clone(),
        ));
    }
    let ops = [
        "first byte of 1 MiB",
        "first byte of 128 MiB",
        "10k entries: t=json",
        "10k entries: first HTML page",
        "100 uploads of 1 kB at once",
    ];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); ops.len()]; grids.len()];
    let put = |gw: &str, file: &Path| -> String {
        let (_, cap) = curl(&["-T", file.to_str().unwrap(), &format!("{gw}/uri")]);
        assert!(cap.starts_with("URI:"), "{cap}");
        cap
    };
    // Per grid, made once: a 128 MiB file and a directory of 10,000 entries.
    let mut children = serde_json::Map::new();
    for i in 0..BIG as u64 {
        let r = pseudo_random_bytes(50_000 + i, 48);
        let cap = format!(
            "URI:CHK:{}:{}:3:10:{}",
            tahoe_core::base32::encode(&r[..16]),
            tahoe_core::base32::encode(&r[16..]),
            1000 + i
        );
        children.insert(
            format!("file-{i:05}"),
            serde_json::json!(["filenode", {"ro_uri": cap}]),
        );
    }
    let children_file = root.join("web-children.json");
    std::fs::write(&children_file, serde_json::to_vec(&children).unwrap()).unwrap();
    let freeze_others = |g: usize| {
        for (i, (_, _, pids)) in grids.iter().enumerate() {
            signal_all(pids, if i == g { libc::SIGCONT } else { libc::SIGSTOP });
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut made: Vec<(String, String)> = Vec::new();
    for (g, (_, gw, _)) in grids.iter().enumerate() {
        freeze_others(g);
        // Fresh bytes per grid: CHK is convergent.
        let f = root.join(format!("web-big-{g}"));
        write_random_file(&f, 128, 78_000_000 + g as u64 * 1000);
        let big = put(gw, &f);
        let (_, dir) = curl(&[
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", children_file.display()),
            &format!("{gw}/uri?t=mkdir-with-children"),
        ]);
        assert!(dir.starts_with("URI:DIR2:"), "{dir}");
        made.push((big, dir));
    }
    let small_files: Vec<PathBuf> = (0..AT_ONCE)
        .map(|i| root.join(format!("web-small-{i}")))
        .collect();
    for run in 0..RUNS {
        for (g, (_, gw, _)) in grids.iter().enumerate() {
            freeze_others(g);
            let (big, dir) = &made[g];
            let r = &mut results[g];
            let one = root.join("web-one");
            std::fs::write(
                &one,
                pseudo_random_bytes(90_000 + (run * 10 + g) as u64, 1 << 20),
            )
            .unwrap();
            let cap = put(gw, &one);
            r[0].push(first_body_byte("GET", &format!("{gw}/uri/{cap}")));
            r[1].push(first_body_byte("GET", &format!("{gw}/uri/{big}")));
            let (t, json) = curl(&[&format!("{gw}/uri/{dir}?t=json")]);
            assert!(json.contains("file-09999"));
            r[2].push(t);
            let (t, html) = curl(&["-H", "Accept: text/html", &format!("{gw}/uri/{dir}")]);
            assert!(html.contains("file-00000"));
            r[3].push(t);
            for (i, f) in small_files.iter().enumerate() {
                let seed = 100_000 + ((run * 10 + g) * AT_ONCE + i) as u64;
                std::fs::write(f, pseudo_random_bytes(seed, 1000)).unwrap();
            }
            let t = Instant::now();
            let children: Vec<Child> = small_files
                .iter()
                .map(|f| {
                    Command::new("curl")
                        .args([
                            "-sS",
                            "-f",
                            "-o",
                            "/dev/null",
                            "-T",
                            f.to_str().unwrap(),
                            &format!("{gw}/uri"),
                        ])
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success(), "a concurrent upload failed");
            }
            r[4].push(t.elapsed().as_secs_f64());
        }
    }
    for (_, _, pids) in &grids {
        signal_all(pids, libc::SIGCONT);
    }
    println!(
        "web gateways (3-of-10, 10 storage node processes, a gateway with storage off; the same \
         HTTP calls against both; first byte: from connecting to the first byte of the body; \
         the rest curl's time_total, or the wall time of 100 curl processes), median of {RUNS}:"
    );
    let theirs = results
        .get(1)
        .cloned()
        .unwrap_or_else(|| vec![Vec::new(); ops.len()]);
    print_table(&ops, &results[0], &theirs);
}
