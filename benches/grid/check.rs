//! `--check`: checking, verifying and repairing on our grid and (with
//! `--tahoe`) Tahoe-LAFS's, through each web gateway with the same curl
//! calls, in turns, the other grid frozen: check and verify of a 128 MiB
//! file, repair of a 128 MiB file that lost 7 of its 10 shares, and a
//! deep check and manifest of 1,000 files in 100 directories (with the
//! time to the first unit).

use std::path::{Path, PathBuf};

use tahoe_core::testing::pseudo_random_bytes;

use crate::report::{curl, first_body_byte, print_table};
use crate::setup::{Nodes, signal_all, start_gateway, tahoe_pids, write_random_file};

/// Every share file of storage index `si` (base32) under `dirs`' storage.
fn share_files(dirs: &[PathBuf], si: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let at = d.join("storage/shares").join(&si[..2]).join(si);
        if let Ok(rd) = std::fs::read_dir(&at) {
            // Share files are named by their number (the rest: leases).
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            }));
        }
    }
    out.sort();
    out
}

/// The storage index of `cap` as its gateway's check says.
fn storage_index(gw: &str, cap: &str) -> String {
    let (_, body) = curl(&["-X", "POST", &format!("{gw}/uri/{cap}?t=check&output=JSON")]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["storage-index"].as_str().unwrap().to_string()
}

pub fn run(root: &Path, gateway: &Path, nodes: &mut Nodes, tahoe_base: Option<&Path>) {
    const RUNS: usize = 3;
    const DIRS: usize = 100;
    const PER_DIR: usize = 10;
    let ogw = start_gateway(gateway, nodes);
    let ours_pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let tahoe_pids = tahoe_pids(tahoe_base);
    let ours_storage: Vec<PathBuf> = (0..10).map(|i| root.join(format!("node{i}"))).collect();
    let mut grids = vec![("ours", ogw, ours_pids.clone(), ours_storage)];
    if let Some(base) = tahoe_base {
        let storage = (1..=10)
            .map(|i| base.join(format!("grid/s{i:02}")))
            .collect();
        grids.push((
            "tahoe",
            "http://127.0.0.1:23300".to_string(),
            tahoe_pids.clone(),
            storage,
        ));
    }
    let ops = [
        "check 128 MiB",
        "verify 128 MiB",
        "repair 128 MiB (7 of 10 shares lost)",
        "deep-check 1,000 files",
        "deep-check --verify 1,000 files",
        "deep-check: first unit",
        "manifest 1,000 files",
    ];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); ops.len()]; grids.len()];
    // Per grid, made once (the other frozen): a 128 MiB file and a tree.
    let mut made = Vec::new();
    for (g, (_, gw, _, _)) in grids.iter().enumerate() {
        let others = others_than(&grids, g);
        signal_all(&others, libc::SIGSTOP);
        let f = root.join("big");
        write_random_file(&f, 128, 81_000_000 + g as u64 * 1000);
        let (_, big) = curl(&["-T", f.to_str().unwrap(), &format!("{gw}/uri")]);
        let (_, tree) = curl(&["-X", "POST", &format!("{gw}/uri?t=mkdir")]);
        let small = root.join("small");
        for d in 0..DIRS {
            for i in 0..PER_DIR {
                let seed = 90_000_000 + (g * 100_000 + d * 100 + i) as u64;
                std::fs::write(&small, pseudo_random_bytes(seed, 2000)).unwrap();
                curl(&[
                    "-T",
                    small.to_str().unwrap(),
                    &format!("{gw}/uri/{tree}/d{d}/f{i}"),
                ]);
            }
        }
        let si = storage_index(gw, &big);
        made.push((big, tree, si));
        signal_all(&others, libc::SIGCONT);
    }
    // Our shares' bytes, for the floors: all of them (verify), and those
    // a repair places.
    let (mut share_bytes, mut placed_bytes) = (0u64, 0u64);
    for _run in 0..RUNS {
        for (g, (_, gw, _, storage)) in grids.iter().enumerate() {
            let others = others_than(&grids, g);
            signal_all(&others, libc::SIGSTOP);
            let (big, tree, si) = &made[g];
            let r = &mut results[g];
            let check = format!("{gw}/uri/{big}?t=check&output=JSON");
            r[0].push(curl(&["-X", "POST", &check]).0);
            r[1].push(curl(&["-X", "POST", &format!("{check}&verify=true")]).0);
            // Seven shares gone from their servers' disks; repair remakes
            // them (ours below its default threshold, happy 7; Tahoe's
            // whenever unhealthy).
            // (A repair may have left a share on two servers: every copy
            // of shares 3 to 9 goes.)
            let files = share_files(storage, si);
            assert!(files.len() >= 10, "{} shares of {si}", files.len());
            let size = |f: &PathBuf| std::fs::metadata(f).unwrap().len();
            let mut seen = std::collections::BTreeSet::new();
            let (mut all, mut placed) = (0, 0);
            for f in &files {
                let shnum: u8 = f.file_name().unwrap().to_string_lossy().parse().unwrap();
                if seen.insert(shnum) {
                    all += size(f);
                    placed += if shnum >= 3 { size(f) } else { 0 };
                }
                if shnum >= 3 {
                    std::fs::remove_file(f).unwrap();
                }
            }
            if g == 0 {
                (share_bytes, placed_bytes) = (all, placed);
            }
            let (t, body) = curl(&["-X", "POST", &format!("{check}&repair=true")]);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                v["post-repair-results"]["results"]["count-shares-good"], 10,
                "{v:#}"
            );
            r[2].push(t);
            let deep = format!("{gw}/uri/{tree}?t=stream-deep-check");
            let (t, body) = curl(&["-X", "POST", &deep]);
            assert_eq!(body.lines().count(), 1 + DIRS + DIRS * PER_DIR + 1, "units");
            r[3].push(t);
            let (t, body) = curl(&["-X", "POST", &format!("{deep}&verify=true")]);
            assert_eq!(body.lines().count(), 1 + DIRS + DIRS * PER_DIR + 1, "units");
            assert!(!body.contains("\"healthy\": false"), "{body}");
            r[4].push(t);
            r[5].push(first_body_byte("POST", &deep));
            let (t, body) = curl(&["-X", "POST", &format!("{gw}/uri/{tree}?t=stream-manifest")]);
            assert_eq!(body.lines().count(), 1 + DIRS + DIRS * PER_DIR + 1, "units");
            r[6].push(t);
            signal_all(&others, libc::SIGCONT);
        }
    }
    println!(
        "check, verify, repair and deep check through each web gateway (curl's time_total; \
         our grid and Tahoe's in turns, the other frozen; 3-of-10 on ten storage nodes), median of {RUNS}:"
    );
    let theirs = if results.len() > 1 {
        results[1].clone()
    } else {
        vec![Vec::new(); ops.len()]
    };
    print_table(&ops, &results[0], &theirs);
    // The floors of verify and repair, measured now (the other grid
    // frozen, ours idle).
    signal_all(&tahoe_pids, libc::SIGSTOP);
    let costs = super::floor::Costs::measure(root);
    signal_all(&tahoe_pids, libc::SIGCONT);
    println!("this machine's floor, {}:", costs.describe());
    let ciphertext = 128 << 20;
    for (i, f) in [
        (1, costs.verify(share_bytes)),
        (2, costs.repair(ciphertext, placed_bytes)),
    ] {
        let ours = testkit::median(results[0][i].clone());
        println!(
            "- {}: {}; floor {:.0} ms, ours {:.0} ms = {:.2}x the floor",
            ops[i],
            f.arithmetic,
            f.secs * 1e3,
            ours * 1e3,
            ours / f.secs
        );
    }
}

/// The pids of every grid but grid `g` (the third field of each).
fn others_than<A, B, D>(grids: &[(A, B, Vec<u32>, D)], g: usize) -> Vec<u32> {
    grids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != g)
        .flat_map(|(_, x)| x.2.clone())
        .collect()
}
