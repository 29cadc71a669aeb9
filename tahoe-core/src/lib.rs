//! The core of the tahoe distributed file store.
//!
//! This crate holds what every part of the system speaks: the four plugin
//! kinds ([`codec`], [`cipher`], [`storage`], [`transport`]) and the services
//! transports carry ([`protocol`]), the one [`Error`] type, node
//! configuration ([`config`]) and the plugin [`registry`]. Plugins depend on
//! this crate and nothing else of the project; the `tahoe` binary wires them
//! together.
//!
//! With the `testing` feature, [`testing`] holds the conformance suite of
//! each plugin kind: every plugin, built-in or third-party, runs its kind's
//! suite in its own tests with one function call.

pub mod base32;
pub mod blocking;
pub mod cap;
pub mod cipher;
pub mod codec;
pub mod config;
pub mod dirnode;
pub mod error;
pub mod hash;
pub mod hashtree;
pub mod identity;
pub mod immutable;
pub mod layout;
pub mod loader;
pub mod mutable;
pub mod protocol;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod transport;
pub mod ueb;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
