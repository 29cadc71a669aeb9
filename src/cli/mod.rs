//! The command line: its shape ([`args`]), what each command does
//! ([`run`](mod@run)), and the developers' tools ([`debug`]).
//!
//! Commands write their results to the given writer (stdout in the binary,
//! a buffer in tests) and return errors for `main` to print; none of them
//! exits the process itself.

pub mod args;
pub mod debug;
pub mod run;

use anyhow::{Context, Result};
use clap::Parser;

pub use args::{Cli, Command, DebugCommand};
pub use debug::chk_cap;
pub use run::run;

/// The `tahoe` program: parse the command line, run it, report an error
/// on standard error and in the exit status.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Not locked for the whole command: `tahoe get` streams to standard
    // output from another thread, which would wait on that lock forever.
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tahoe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The async runtime of every command. Blocking work (file I/O, codecs)
/// runs on a small pool: each extra thread gets its own malloc arena, and
/// with tokio's default of 512 threads the arenas' retained memory, not the
/// data, would dominate a node's RSS.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
