//! The client API: a client's handle on the grid ([`GridClient`]), what it
//! knows of the servers ([`broker`], [`link`]), its aliases, the file
//! commands and transfers on top, and Tahoe's JSON shapes. Every frontend
//! (the gateway, the command line) uses this and none is used by it.

pub mod aliases;
pub mod broker;
pub mod chunks;
pub mod deep;
pub mod files;
pub mod json;
pub mod link;
pub mod maintenance;
pub mod progress;
pub mod session;
pub mod transfer;

pub use session::GridClient;
