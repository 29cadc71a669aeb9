//! The stable interface between a tahoe node and plugins built separately
//! as shared libraries.
//!
//! Rust has no stable ABI, so a plugin compiled by another compiler version
//! cannot hand the node Rust trait objects. This crate is the contract both
//! sides compile against instead: std-only, versioned, and C-ABI at the
//! boundary.
//!
//! - A library exports one symbol, [`ENTRY_SYMBOL`], an `extern "C" fn()`
//!   returning a pointer to a [`PluginDescriptor`]: the ABI version (its
//!   first field, so that any version can read it), the plugin kind, name
//!   and description, and a table of `extern "C"` functions with its size.
//! - Data crosses as byte slices ([`Slice`]) lent by the caller, and
//!   buffers ([`Buf`]) owned by the plugin and given back through the
//!   descriptor's `free_buf`, so each side frees only what its own
//!   allocator made. Errors cross as a kind code ([`ErrorKind`]) plus a
//!   message buffer; configuration as the plugin's TOML section, as text.
//! - Authors implement the plain Rust traits [`StorageBackend`],
//!   [`Codec`] or [`Cipher`] and export them with one macro:
//!   [`export_storage_backend!`], [`export_codec!`], [`export_cipher!`].
//!   Every entry point catches panics, so a panicking plugin returns an
//!   `Internal` error instead of unwinding into the node (plugins must be
//!   built with `panic = "unwind"`, Rust's default).
//!
//! A loaded library runs inside the node with the node's authority: the
//! host checks what comes back (lengths, record shapes, UTF-8) so that a
//! buggy plugin is contained, but it cannot defend against a malicious
//! one. Load only libraries you would run as the node's user.
//!
//! Storage calls are blocking: the node runs them on its blocking-thread
//! pool, never on the async runtime. The contracts of the traits are
//! those of the node's own traits (`tahoe_core::kinds::storage` and friends); the
//! node's conformance suites check them against a loaded library.
//!
//! The storage records ([`ShareKind`], [`ShareInfo`], [`TestVector`],
//! [`WriteVector`], [`Lease`]) and the share semantics of [`util`] are
//! the node's own, defined here once: `tahoe_core::kinds::storage`
//! re-exports them, with its `Bytes` as the vectors' byte type and the
//! `serde` feature of this crate on. Plugins use them as they are, with
//! `Vec<u8>` and no dependency but std.

#![allow(unsafe_code)] // the C ABI is this crate's whole job

mod abi;
mod cipher;
mod codec;
mod storage;
pub mod util;
pub mod wire;

pub use abi::{Buf, Handle, PluginDescriptor, Slice, StaticDescriptor};
pub use cipher::{Cipher, CipherTable};
pub use codec::{Codec, CodecTable};
pub use storage::{
    Lease, PendingShare, ShareInfo, ShareKind, StorageBackend, StorageIndex, StorageTable,
    TestVector, WriteVector,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::cipher::descriptor as cipher_descriptor;
    pub use crate::codec::descriptor as codec_descriptor;
    pub use crate::storage::descriptor as storage_descriptor;
}

/// The ABI version this crate describes. Bumped on any incompatible change
/// to the descriptor, the tables, the wire records or the error codes.
pub const ABI_VERSION: u32 = 2;
// Version 2: the storage table's `storage_indexes` (listing for the lease
// crawler).

/// The symbol every plugin library exports. It carries no version, so
/// that the node can read the version of a library built for another ABI
/// and say so, instead of reporting a missing symbol.
pub const ENTRY_SYMBOL: &str = "tahoe_plugin_entry";

/// The entry point's type.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// Whether a library reporting `version` can be loaded by this build.
pub fn is_compatible(version: u32) -> bool {
    version == ABI_VERSION
}

/// The plugin kinds a library can provide (transports stay built in).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// A storage backend ([`StorageTable`]).
    Storage = 1,
    /// An erasure codec ([`CodecTable`]).
    Codec = 2,
    /// A stream cipher ([`CipherTable`]).
    Cipher = 3,
}

impl PluginKind {
    /// The kind for a descriptor's `kind` field.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(PluginKind::Storage),
            2 => Some(PluginKind::Codec),
            3 => Some(PluginKind::Cipher),
            _ => None,
        }
    }

    /// Its name in messages and config sections.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Storage => "storage",
            PluginKind::Codec => "codec",
            PluginKind::Cipher => "cipher",
        }
    }

    /// The size of this kind's function table, which a descriptor's
    /// `table_size` must equal.
    pub fn table_size(self) -> usize {
        match self {
            PluginKind::Storage => std::mem::size_of::<StorageTable>(),
            PluginKind::Codec => std::mem::size_of::<CodecTable>(),
            PluginKind::Cipher => std::mem::size_of::<CipherTable>(),
        }
    }
}

/// What went wrong, as a code that crosses the boundary. The codes are
/// part of the ABI; the node maps them to its own error kinds.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such share (or lease, or key).
    NotFound = 1,
    /// It exists already (a sealed share, an immutable share where a
    /// mutable one was asked for).
    AlreadyExists = 2,
    /// Stored data failed a check.
    Corrupt = 3,
    /// An argument is out of range or malformed.
    InvalidInput = 4,
    /// No room for the data.
    NoSpace = 5,
    /// The underlying store failed.
    Io = 6,
    /// The configuration section is wrong.
    ConfigInvalid = 7,
    /// The store is unreachable for now.
    Unavailable = 8,
    /// A bug, or a panic caught at the boundary.
    Internal = 9,
}

impl ErrorKind {
    /// The kind for a returned status; unknown codes are `Internal`.
    pub fn from_code(code: i32) -> Self {
        use ErrorKind::*;
        [
            NotFound,
            AlreadyExists,
            Corrupt,
            InvalidInput,
            NoSpace,
            Io,
            ConfigInvalid,
            Unavailable,
        ]
        .into_iter()
        .find(|k| *k as i32 == code)
        .unwrap_or(Internal)
    }
}

/// A plugin's error: a kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::StorageFull => ErrorKind::NoSpace,
            std::io::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
            _ => ErrorKind::Io,
        };
        Error::new(kind, e.to_string())
    }
}

/// The result of a plugin call.
pub type Result<T> = std::result::Result<T, Error>;

/// Export `$t` (a [`StorageBackend`]) as this library's plugin.
#[macro_export]
macro_rules! export_storage_backend {
    ($t:ty) => {
        $crate::__export_entry!($crate::__private::storage_descriptor::<$t>());
    };
}

/// Export `$t` (a [`Codec`]) as this library's plugin.
#[macro_export]
macro_rules! export_codec {
    ($t:ty) => {
        $crate::__export_entry!($crate::__private::codec_descriptor::<$t>());
    };
}

/// Export `$t` (a [`Cipher`]) as this library's plugin.
#[macro_export]
macro_rules! export_cipher {
    ($t:ty) => {
        $crate::__export_entry!($crate::__private::cipher_descriptor::<$t>());
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_entry {
    ($make:expr) => {
        /// The tahoe plugin entry point (see the `tahoe-api` crate).
        #[unsafe(no_mangle)]
        pub extern "C" fn tahoe_plugin_entry() -> *const $crate::PluginDescriptor {
            static DESCRIPTOR: ::std::sync::OnceLock<$crate::StaticDescriptor> =
                ::std::sync::OnceLock::new();
            DESCRIPTOR
                .get_or_init(|| $crate::StaticDescriptor($make))
                .as_ptr()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_version_is_compatible() {
        assert!(is_compatible(ABI_VERSION));
        assert!(!is_compatible(ABI_VERSION + 1));
        assert!(!is_compatible(ABI_VERSION - 1));
    }

    #[test]
    fn error_codes_round_trip() {
        for k in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Corrupt,
            ErrorKind::InvalidInput,
            ErrorKind::NoSpace,
            ErrorKind::Io,
            ErrorKind::ConfigInvalid,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            assert_eq!(ErrorKind::from_code(k as i32), k);
        }
        assert_eq!(ErrorKind::from_code(0), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_code(-7), ErrorKind::Internal);
    }
}
