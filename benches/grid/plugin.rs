//! `--plugin`: a grid storing through the loaded `dirstore` library
//! against one with the same backend compiled in.

use std::path::Path;
use std::process::Child;

use testkit::median;

use crate::setup::{EXE, grid, signal_all, timed, write_random_file};

/// What the plugin ABI costs a whole grid: ten storage nodes keep their
/// shares through the example `dirstore` backend loaded from its library
/// (`[plugins] load`), ten others through the same code compiled in
/// (`examples/static-backend`, `tahoe_core::plugin::loader::linked`). Uploads and
/// downloads through `tahoe put` / `tahoe get` on each grid in turns, the
/// other grid frozen (SIGSTOP), each grid first in every other run;
/// medians of seven, and the ABI's cost as the median of the runs' paired
/// ratios (linked-in rate / loaded rate - 1).
pub fn run(root: &Path, sizes: &[u64]) {
    const RUNS: u64 = 7;
    let lib = tahoe_core::testing::built_library("tahoe_example_dirstore");
    let linked_exe = tahoe_core::testing::built("examples/static-backend");
    let section = "backend = \"dirstore\"\n\n[storage.dirstore]\npath = \"dirstore-shares\"\n";
    let loaded = format!(
        "{section}\n[plugins]\nload = [{:?}]\n",
        lib.to_str().unwrap()
    );
    let grids = [
        grid(&root.join("loaded"), EXE, &loaded),
        grid(&root.join("linked"), linked_exe.to_str().unwrap(), section),
    ];
    let pids: Vec<Vec<u32>> = grids
        .iter()
        .map(|(_, n)| n.0.iter().map(Child::id).collect())
        .collect();
    println!(
        "dirstore through the plugin ABI vs linked in: two grids of 10 storage nodes (processes, TLS on 127.0.0.1), tahoe put/get, 3-of-10, the other grid frozen, median of 7"
    );
    println!(
        "| size | upload loaded | upload linked in | ABI cost (paired) | download loaded | download linked in | ABI cost (paired) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &size in sizes {
        let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for run in 0..RUNS {
            let file = root.join("input");
            write_random_file(&file, size, (size * 1000 + run) * 100_000);
            // Each grid goes first in every other run.
            let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for g in order {
                let gateway = &grids[g].0;
                signal_all(&pids[1 - g], libc::SIGSTOP);
                let gw = gateway.to_str().unwrap();
                let (t, _, _, cap) = timed(&["put", "--basedir", gw, file.to_str().unwrap()]);
                rates[g][0].push((size << 20) as f64 / 1e6 / t);
                let (t, _, _, _) = timed(&["get", "--basedir", gw, &cap, "/dev/null"]);
                rates[g][1].push((size << 20) as f64 / 1e6 / t);
                signal_all(&pids[1 - g], libc::SIGCONT);
            }
        }
        let m = |g: usize, op: usize| median(rates[g][op].clone());
        // Paired by run (the two grids measured back to back), so a slow
        // spell of the machine shows in both sides of one ratio.
        let cost = |op: usize| {
            let r = rates[0][op].iter().zip(&rates[1][op]);
            (median(r.map(|(l, n)| n / l).collect()) - 1.0) * 100.0
        };
        println!(
            "| {size} MiB | {:.1} MB/s | {:.1} MB/s | {:+.1}% | {:.1} MB/s | {:.1} MB/s | {:+.1}% |",
            m(0, 0),
            m(1, 0),
            cost(0),
            m(0, 1),
            m(1, 1),
            cost(1)
        );
        let runs = |g: usize, op: usize| {
            rates[g][op]
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "|   runs | {} | {} | | {} | {} | |",
            runs(0, 0),
            runs(1, 0),
            runs(0, 1),
            runs(1, 1)
        );
    }
    // Both grids stored through dirstore, in its own layout.
    for g in ["loaded", "linked"] {
        let shares = root.join(g).join("node0/dirstore-shares");
        assert!(
            shares.is_dir(),
            "no dirstore shares at {}",
            shares.display()
        );
    }
}
