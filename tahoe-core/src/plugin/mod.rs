//! How a node is assembled from plugins: its configuration ([`config`]),
//! the registry of plugins by name ([`registry`]), and the loader of
//! plugins from shared libraries ([`loader`]), which registers what it
//! loads into a registry it is given.

pub mod config;
pub mod loader;
pub mod registry;
