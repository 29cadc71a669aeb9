//! End-to-end tests of whole grids: real `tahoe` processes talking TLS over
//! TCP on 127.0.0.1, each in its own temporary base directory
//! ([`testkit::ProcessGrid`]).

use std::path::{Path, PathBuf};

mod backends;
mod check;
mod cli;
mod failures;
mod maintenance;
mod nodes;
mod tahoe_lafs_cli;
mod web_api;

/// The grids run the binary cargo built for these tests.
#[test]
fn testkit_finds_this_builds_binary() {
    assert_eq!(testkit::built_exe(), Path::new(crate::EXE));
}

/// Every share file (a name of digits) under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            {
                out.push(p);
            }
        }
    }
    out
}
