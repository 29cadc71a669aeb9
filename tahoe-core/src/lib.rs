//! The core of the tahoe distributed file store.
//!
//! This crate holds what every part of the system speaks: the plugin
//! kinds and their records, Tahoe-LAFS's formats, the protocol nodes
//! speak, the storage server, the client side, and how a node is
//! assembled from plugins. Plugins depend on this crate and nothing else
//! of the project; the `tahoe` binary wires them together.
//!
//! Its folders are its layers. A module imports only from the layers
//! above it in this list (checked by `scripts/layers.py` in `make test`):
//!
//! ```text
//!  0. error                    the one error type
//!     blocking, base32, time,   the blocking pool; base32; clock, spans,
//!     state                     dates; versioned state files
//!  1. kinds/                    plugin traits (codec, cipher, storage) and records
//!  2. format/                   pure bytes <-> values: hashes, caps, CHK and SSK
//!                               shares and keys, directories (no I/O)
//!  3. protocol/                 each call defined once; transport; identity
//!  4. server/  |  client/       siblings, neither imports the other: what a
//!                               storage server decides | servers, secrets,
//!                               immutable, mutable, directories
//!  5. plugin/                   config -> registry -> loader
//! ```
//!
//! With the `testing` feature, `testing` (outside the order: nothing
//! imports it) holds the conformance suite of each plugin kind: every
//! plugin, built-in or third-party, runs its kind's suite in its own tests
//! with one function call.

pub mod base32;
pub mod blocking;
pub mod error;

pub mod kinds;

pub mod format;

pub mod protocol;

pub mod client;
pub mod server;
pub mod state;
pub mod time;

pub mod plugin;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
