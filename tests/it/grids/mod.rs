//! End-to-end tests of whole grids: real `tahoe` processes talking TLS over
//! TCP on 127.0.0.1, each in its own temporary base directory
//! ([`testkit::ProcessGrid`]).

use std::path::Path;

mod backends;
mod check;
mod cli;
mod failures;
mod hosts;
mod maintenance;
mod nodes;
mod tahoe_lafs_cli;
mod upgrade;
mod web_api;

/// The grids run the binary cargo built for these tests.
#[test]
fn testkit_finds_this_builds_binary() {
    assert_eq!(testkit::built_exe(), Path::new(crate::EXE));
}

/// Every share file (a name of digits) under `dir`.
use testkit::share_files as walk;
