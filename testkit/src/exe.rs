//! Where the `tahoe` binary under test is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This build's `tahoe` binary, the one cargo built for the running
/// integration test or bench.
///
/// A test crate sees it as `env!("CARGO_BIN_EXE_tahoe")`; this crate,
/// built apart, cannot. So: `CARGO_BIN_EXE_tahoe` from the environment
/// (cargo sets it when it runs a test or bench, since cargo 1.94), else
/// `tahoe` in the profile directory the running binary was built for (it
/// is `target/<profile>/deps/NAME`, the binary `target/<profile>/tahoe`:
/// the layout [`tahoe_core::testing::built`] relies on too). The test
/// binary checks that this is its `env!("CARGO_BIN_EXE_tahoe")`.
pub fn built_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let path = std::env::var_os("CARGO_BIN_EXE_tahoe")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let me = std::env::current_exe().unwrap();
                let profile = me
                    .ancestors()
                    .nth(2)
                    .unwrap_or_else(|| panic!("{} is not under target/", me.display()));
                profile.join(format!("tahoe{}", std::env::consts::EXE_SUFFIX))
            });
        assert!(
            path.is_file(),
            "no tahoe binary at {}: run through `cargo test` or `cargo bench`, or set \
             CARGO_BIN_EXE_tahoe",
            path.display()
        );
        path
    })
}

/// The binary the grids and runners run: [`built_exe`], or
/// `TEST_TAHOE_EXE` (another build, to check by hand that a test fails
/// without the fix it tests).
pub fn exe() -> PathBuf {
    std::env::var_os("TEST_TAHOE_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| built_exe().to_path_buf())
}
