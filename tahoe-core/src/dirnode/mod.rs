//! Directories: Tahoe-LAFS's dirnodes, stored in mutable files (or, for
//! immutable directories, in immutable ones), and the operations on them.
//!
//! - [`format`]: the packed entries (DIR2), their parsing and packing;
//! - [`json`]: metadata JSON written as Tahoe-LAFS writes it;
//! - [`client`]: directories on a grid: create, list, look up paths, add,
//!   remove and rename entries, without lost updates under concurrency.

pub mod client;
pub mod format;
pub mod json;

pub use format::{ChildCap, Directory, Entry, Metadata, Node, Replace, Skipped, WriteKey};
