//! Mutable files: SDMF and MDMF, in Tahoe-LAFS's formats.
//!
//! - [`keys`]: the RSA signing key and every key and secret derived from it,
//!   and a pool of keys made ahead of time;
//! - [`layout`]: the bytes of SDMF and MDMF shares;
//! - [`encode`]: turning plaintext into a signed version's shares;
//! - [`servermap`]: asking servers which versions they hold, checking every
//!   signature;
//! - [`retrieve`]: reading the newest recoverable version (or a range of
//!   it), every hash checked;
//! - [`publish`]: writing a new version through test-and-write, so that a
//!   concurrent writer is detected instead of overwritten, in two phases so
//!   that a failed publish leaves the previous version readable;
//! - [`file`]: the operations people use (create, read, overwrite, write
//!   at an offset, modify with retries).
//!
//! docs/mutable.md describes the formats and protocols.

pub mod encode;
pub mod file;
pub mod keys;
pub mod layout;
pub mod publish;
pub mod retrieve;
pub mod servermap;

pub use layout::MutableFormat;

/// The codec mutable files are encoded with: Tahoe's format fixes zfec,
/// which `crs` reproduces byte for byte; shares record no codec name, so
/// another codec would make files nobody could read.
pub const MUTABLE_CODEC: &str = "crs";

/// Tahoe's default largest MDMF segment (128 KiB; rounded up to a multiple
/// of k).
pub const DEFAULT_MDMF_SEGMENT_SIZE: u64 = 128 * 1024;

/// SDMF files are one segment, held whole in memory while they are
/// encoded or decoded; larger files must be MDMF.
pub const MAX_SDMF_SIZE: u64 = 64 << 20;
