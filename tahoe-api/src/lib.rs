//! The stable interface between a tahoe node and plugins built separately
//! as shared libraries.
//!
//! Rust has no stable ABI, so a plugin compiled by another compiler version
//! cannot hand the node Rust trait objects. This crate is the contract both
//! sides compile against instead: std-only, versioned, and C-ABI at the
//! boundary. A library exports one symbol, [`ENTRY_SYMBOL`], returning a
//! descriptor whose first field is [`ABI_VERSION`]; the node refuses a
//! library whose version differs (`PluginIncompatible`) before touching
//! anything else in it.
//!
//! The descriptor tables and the export macros arrive with the
//! shared-library loader; until then this crate fixes the names and the
//! version rule that both sides will check.

/// The ABI version this crate describes. Bumped on any incompatible change.
pub const ABI_VERSION: u32 = 1;

/// The symbol every plugin library exports.
pub const ENTRY_SYMBOL: &str = "tahoe_plugin_entry_v1";

/// Whether a library reporting `version` can be loaded by this build.
pub fn is_compatible(version: u32) -> bool {
    version == ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_version_is_compatible() {
        assert!(is_compatible(ABI_VERSION));
        assert!(!is_compatible(ABI_VERSION + 1));
        assert!(ENTRY_SYMBOL.ends_with(&format!("v{ABI_VERSION}")));
    }
}
