//! The plugin kinds a node is assembled from, and the records they speak
//! in: [`codec`] (erasure coding), [`cipher`] (the stream cipher) and
//! [`storage`] (where a server keeps shares). The transport, the fourth
//! kind, carries the protocol and so sits with it (`protocol::transport`).
//! Everything else in this crate is written against these traits.

pub mod cipher;
pub mod codec;
pub mod storage;
