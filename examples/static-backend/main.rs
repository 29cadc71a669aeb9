//! A `tahoe` binary with a storage backend compiled in rather than loaded:
//! the example `dirstore` backend (examples/custom-backend, a crate built
//! as both a `cdylib` and an rlib) registered as one more built-in. The
//! command line is `tahoe`'s; `[storage] backend = "dirstore"` selects the
//! backend with no `[plugins] load` line and no library file beside the
//! binary.
//!
//! Run: `cargo run --example static-backend -- run --basedir BASEDIR`

use tahoe_core::plugin::loader::linked::register_storage;
use tahoe_example_dirstore::DirStore;

fn main() -> std::process::ExitCode {
    tahoe::link_plugins(register_storage::<DirStore>);
    tahoe::cli::main()
}
