//! Mutable files' formats (Tahoe's SSK: SDMF and MDMF): the keys and
//! secrets derived from a file's RSA key, the bytes of its shares, and the
//! encoding of a version into them.

pub mod encode;
pub mod keys;
pub mod layout;

pub use layout::MutableFormat;

/// The codec mutable files are encoded with: Tahoe's format fixes zfec,
/// which `crs` reproduces byte for byte; shares record no codec name, so
/// another codec would make files nobody could read.
pub const MUTABLE_CODEC: &str = "crs";

/// SDMF files are one segment, held whole in memory while they are
/// encoded or decoded; larger files must be MDMF.
pub const MAX_SDMF_SIZE: u64 = 64 << 20;
