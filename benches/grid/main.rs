//! Whole-grid benchmark: a queen and ten storage nodes as real processes
//! on 127.0.0.1 (TLS over TCP), driven through the gateway. One file per
//! mode: `throughput` (the default: `tahoe put` / `tahoe get` of each size
//! in MiB given, 16 and 128 by default), `mutable` (`--mutable`), `dirs`
//! (`--dirs`), `web` (`--web`), `check` (`--check`), `keeping` (`--keeping`:
//! the lease crawler and maintenance), `floor` (`--floor`: `PUT /uri` against
//! this machine's floor), each with `--tahoe BASE` to measure a
//! running Tahoe-LAFS 1.20 grid in turns with ours, `plugin`
//! (`--plugin`), and `hosts` (`--hosts`: the same grid on loopback and
//! across network namespaces, as root). docs/benchmarks.md ("The grid bench") says what each
//! measures and how; the scripts in `scripts/bench-*.sh` run them.

#![allow(clippy::unwrap_used)]

mod check;
mod dirs;
mod floor;
mod hosts;
mod keeping;
mod mutable;
mod plugin;
mod report;
mod setup;
mod throughput;
mod web;

use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let tahoe_base = args
        .iter()
        .position(|a| a == "--tahoe")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let sizes: Vec<u64> = {
        let a: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
        if a.is_empty() { vec![16, 128] } else { a }
    };
    // Nodes store under /dev/shm when it exists, so that the figures are
    // the software's, not the disk's.
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = dir.path();
    if flag("--plugin") {
        plugin::run(root, &sizes);
        return;
    }
    if flag("--hosts") {
        hosts::run(root, &sizes);
        return;
    }
    let storage = if flag("--keeping") {
        // Crawlers that walk without pause when on.
        "\n[storage.crawler]\ncycle_interval = \"1s\"\n"
    } else {
        ""
    };
    let (gateway, mut nodes) = setup::grid(root, setup::EXE, storage);
    let tahoe = tahoe_base.as_deref();
    if flag("--mutable") {
        mutable::run(root, &gateway, &nodes, tahoe);
    } else if flag("--dirs") {
        dirs::run(root, &gateway, &nodes, tahoe);
    } else if flag("--check") {
        check::run(root, &gateway, &mut nodes, tahoe);
    } else if flag("--keeping") {
        let only = args
            .iter()
            .position(|a| a == "--keeping")
            .and_then(|i| args.get(i + 1))
            .map(String::as_str);
        keeping::run(root, &gateway, &mut nodes, only);
    } else if flag("--web") {
        web::run(root, &gateway, &mut nodes, tahoe);
    } else if flag("--floor") {
        floor::run(root, &gateway, &mut nodes, &sizes);
    } else {
        throughput::run(root, &gateway, &nodes, &sizes);
    }
}
