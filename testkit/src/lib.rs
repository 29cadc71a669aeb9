//! What `tahoe`'s integration tests (`tests/it`) and benches share.
//!
//! - [`MemGrid`]: storage servers in this process, over the memory backend
//!   and the memory transport, each behind a [`Faulty`] wrapper that
//!   misbehaves on request; pipeline tests drive the client against it.
//! - [`ProcessGrid`]: a queen and clients as real `tahoe` processes talking
//!   TLS over TCP on 127.0.0.1, each node in its own temporary base
//!   directory; [`tahoe()`] and [`run_on`] run the binary's commands.
//! - [`Demo`]: `tahoe demo` as a newcomer runs it, and what it printed.
//! - [`hosts`]: hosts as network namespaces on one bridge, and a grid set
//!   up across them as README's "A grid on several machines" says.
//! - [`mod@http`]: one-shot HTTP/1.1 requests over plain TCP.
//! - [`measure`]: peak RSS and CPU of processes, medians, timed runs.
//! - [`vectors`]: Tahoe-LAFS's test vectors' keys, hex, the built-in cipher.
//!
//! The binary under test is [`built_exe`]: the `tahoe` cargo built for the
//! running test or bench, found without being passed in (see there).
//! Grids and runners run [`exe`], which `TEST_TAHOE_EXE` can point at
//! another build.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod demo;
mod exe;
pub mod hosts;
pub mod http;
pub mod measure;
mod mem_grid;
mod process;
mod process_grid;
pub mod vectors;

pub use demo::Demo;
pub use exe::{built_exe, exe};
pub use http::{http, http_json, http_raw};
pub use measure::{median, peak_rss};
pub use mem_grid::{Fault, Faulty, MemGrid, rt};
pub use process::{
    output_within, run_on, share_files, signal, signal_pid, tahoe, text, wait_listening,
    wait_shared_drive,
};
pub use process_grid::ProcessGrid;
