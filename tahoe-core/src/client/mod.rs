//! The client side of the grid: choosing servers, the secrets given to
//! them, and the files on top: immutable, mutable, directories. Written
//! against the protocol traits only, so any transport and any server.

pub mod check;
pub mod dirnode;
pub mod immutable;
pub mod mutable;
pub mod secrets;
pub mod servers;
pub mod source;
