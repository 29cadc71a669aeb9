//! The `tahoe` node: command line, configuration and role wiring.
//!
//! This package is the composition root. It knows every built-in plugin
//! (each behind a cargo feature, on by default) and hands them to
//! `tahoe-core`'s registry; everything else lives in the libraries.
//!
//! Its folders are its layers. A module imports only from the layers
//! above it in this list (checked by `scripts/layers.py` in `make test`):
//!
//! ```text
//!  0. basedir, plugins            a node's directory; the built-in plugins
//!  1. client/                      GridClient: the broker, links to servers,
//!                                  aliases, file commands, transfers
//!  2. fs/                          the grid as a file system: one core, the
//!                                  FUSE mount and the SFTP server
//!  3. web/                         the gateway: routes, pages, operations
//!  4. s3/                          the S3 gateway: buckets and objects on fs/
//!  5. node/                        create, roles (queen, client), daemon, demo
//!  6. cli/                         the command line
//! ```

pub mod basedir;
pub mod cli;
pub mod client;
pub mod fs;
pub mod node;
pub mod plugins;
pub mod s3;
pub mod web;

pub use plugins::{builtin_registry, link_plugins, registry_for};
