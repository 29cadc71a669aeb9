//! The integration tests of `tahoe`, one test binary (the crate is linked
//! once, not once per file) with modules by theme:
//!
//! - `formats`: Tahoe-LAFS's own bytes (test vectors, shares and
//!   directories its library wrote) and hostile input to the parsers;
//! - `protocol`: the storage server's rules, the upload sink, and a hostile
//!   peer against real nodes;
//! - `files`: immutable files, mutable files and directories through the
//!   client pipelines on an in-process grid ([`testkit::MemGrid`]);
//! - `grids`: grids of real processes ([`testkit::ProcessGrid`]): failures,
//!   nodes' lives, backends, the command line, Tahoe's own CLI, the web API;
//! - `web`: the gateway against hostile pages, users and servers, and the
//!   web UI in a real browser;
//! - `frontends`: the grid as a file system through real clients: a
//!   kernel FUSE mount, OpenSSH's sftp, sshfs and rclone;
//! - `plugins`: libraries loaded at run time, `tahoe plugins`, and the
//!   conformance suites' report.
//!
//! What the modules share (grids, the `tahoe` runner, an HTTP client,
//! probes and medians) is the `testkit` crate's. Run one theme with
//! `cargo test --test it grids::`, one test by its path.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod files;
mod formats;
mod frontends;
mod grids;
mod plugins;
mod protocol;
mod web;

/// This build's `tahoe` binary.
const EXE: &str = env!("CARGO_BIN_EXE_tahoe");
