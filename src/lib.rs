//! The `tahoe` node: command line, configuration and role wiring.
//!
//! This package is the composition root. It knows every built-in plugin
//! (each behind a cargo feature, on by default) and hands them to
//! `tahoe-core`'s registry; everything else lives in the libraries.

pub mod announce;
pub mod basedir;
pub mod cli;
pub mod client;
pub mod node;
pub mod plugins;
pub mod web;

pub use plugins::{builtin_registry, link_plugins, registry_for};
