//! Mutable files: SDMF and MDMF, in Tahoe-LAFS's formats (the bytes, the
//! key derivations and the encoding are in `format::ssk`).
//!
//! - [`rsa`]: the RSA signing and verifying keys;
//! - [`key_pool`]: signing keys made ahead of time, at low priority;
//! - [`servermap`]: asking servers which versions they hold, checking every
//!   signature;
//! - [`retrieve`]: reading the newest recoverable version (or a range of
//!   it), every hash checked;
//! - [`publish`]: writing a new version through test-and-write, so that a
//!   concurrent writer is detected instead of overwritten, in two phases so
//!   that a failed publish leaves the previous version readable;
//! - [`contents`]: the plaintext of versions just read or written, so that
//!   a change does not read back what the last one wrote;
//! - [`file`](mod@file): the operations people use (create, read, overwrite, write
//!   at an offset, modify with retries).
//!
//! docs/mutable.md describes the formats and protocols.

pub mod contents;
pub mod file;
pub mod key_pool;
pub mod publish;
pub mod retrieve;
pub mod rsa;
pub mod servermap;

/// Tahoe's default largest MDMF segment (128 KiB; rounded up to a multiple
/// of k).
pub const DEFAULT_MDMF_SEGMENT_SIZE: u64 = 128 * 1024;
