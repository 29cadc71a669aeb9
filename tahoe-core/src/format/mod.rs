//! Tahoe-LAFS's formats: pure bytes-to-values code, no I/O, no clock, no
//! randomness: hashes and hash trees, caps, immutable (CHK) and mutable
//! (SSK) shares and their key derivations, directory packing. Codec and
//! cipher plugins are called for CPU work only.

pub mod cap;
pub mod chk;
pub mod dirnode;
pub mod hash;
pub mod hashtree;
pub mod ssk;
