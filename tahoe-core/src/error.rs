//! The one error type of the project.
//!
//! Every layer (plugins, pipelines, the storage protocol) reports failures as
//! an [`Error`]: a machine-readable [`ErrorKind`] plus a human message. The
//! pair is serializable so a storage server's refusal reaches the client with
//! its kind intact, whatever transport carried it; callers branch on the kind
//! (retry on `Unavailable`, drop a share on `Corrupt`), never on the message.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, in a form a caller can act on.
///
/// The list grows over time: match with a wildcard arm. An unknown kind
/// received from a newer peer deserializes as [`ErrorKind::Other`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The named object (share, storage index, plugin, file) does not exist.
    NotFound,
    /// The object exists already and may not be replaced (a sealed share).
    AlreadyExists,
    /// Data failed an integrity check.
    Corrupt,
    /// Fewer than k valid shares could be found.
    NotEnoughShares,
    /// An upload could not reach its servers-of-happiness target.
    Unhappy,
    /// A peer or resource cannot be used right now; retrying may help.
    Unavailable,
    /// An operation ran out of time.
    Timeout,
    /// The caller lacks the authority for this operation.
    PermissionDenied,
    /// Configuration is invalid; the message names the file and key.
    ConfigInvalid,
    /// A plugin does not fit this build (ABI version, missing symbol).
    PluginIncompatible,
    /// An argument is outside what the operation accepts.
    InvalidInput,
    /// A test-and-set precondition did not hold, or a concurrent writer won.
    Conflict,
    /// The backend has no room for the data.
    NoSpace,
    /// An operating-system I/O failure.
    Io,
    /// A bug or broken invariant inside this program.
    Internal,
    /// A kind this build does not know (sent by a newer peer).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// A short lowercase name, stable across versions (used in messages and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::NotEnoughShares => "not enough shares",
            ErrorKind::Unhappy => "unhappy",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::ConfigInvalid => "invalid configuration",
            ErrorKind::PluginIncompatible => "incompatible plugin",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NoSpace => "no space",
            ErrorKind::Io => "i/o error",
            ErrorKind::Internal => "internal error",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error: a kind to branch on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The result type used throughout the project.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with context, keeping the kind.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

macro_rules! constructors {
    ($($fn:ident => $kind:ident),* $(,)?) => {
        impl Error {
            $(
                #[doc = concat!("An error of kind [`ErrorKind::", stringify!($kind), "`].")]
                pub fn $fn(message: impl Into<String>) -> Self {
                    Error::new(ErrorKind::$kind, message)
                }
            )*
        }
    };
}

constructors! {
    not_found => NotFound,
    already_exists => AlreadyExists,
    corrupt => Corrupt,
    not_enough_shares => NotEnoughShares,
    unhappy => Unhappy,
    unavailable => Unavailable,
    timeout => Timeout,
    permission_denied => PermissionDenied,
    config_invalid => ConfigInvalid,
    plugin_incompatible => PluginIncompatible,
    invalid_input => InvalidInput,
    conflict => Conflict,
    no_space => NoSpace,
    internal => Internal,
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::TimedOut => ErrorKind::Timeout,
            Io::StorageFull => ErrorKind::NoSpace,
            Io::InvalidInput => ErrorKind::InvalidInput,
            _ => ErrorKind::Io,
        };
        Error::new(kind, e.to_string())
    }
}

/// A plugin's error code (tahoe-api's `ErrorKind`, the ABI's code set):
/// the node's kind of the same name, every code having one.
impl From<tahoe_api::ErrorKind> for ErrorKind {
    fn from(kind: tahoe_api::ErrorKind) -> Self {
        use tahoe_api::ErrorKind as A;
        match kind {
            A::NotFound => ErrorKind::NotFound,
            A::AlreadyExists => ErrorKind::AlreadyExists,
            A::Corrupt => ErrorKind::Corrupt,
            A::InvalidInput => ErrorKind::InvalidInput,
            A::NoSpace => ErrorKind::NoSpace,
            A::Io => ErrorKind::Io,
            A::ConfigInvalid => ErrorKind::ConfigInvalid,
            A::Unavailable => ErrorKind::Unavailable,
            A::Internal => ErrorKind::Internal,
        }
    }
}

/// A tahoe-api error (from its share helpers, or a plugin's, before the
/// loader names the plugin in it): same kind, same message.
impl From<tahoe_api::Error> for Error {
    fn from(e: tahoe_api::Error) -> Self {
        Error::new(e.kind.into(), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_kind_and_message() {
        let e = Error::corrupt("share 3 failed its block hash");
        assert_eq!(e.to_string(), "corrupt: share 3 failed its block hash");
        assert_eq!(
            e.context("server x").message(),
            "server x: share 3 failed its block hash"
        );
    }

    #[test]
    fn plugin_errors_keep_kind_and_message() {
        let e: Error = tahoe_api::Error::new(tahoe_api::ErrorKind::NoSpace, "full").into();
        assert_eq!((e.kind(), e.message()), (ErrorKind::NoSpace, "full"));
        assert_eq!(
            ErrorKind::from(tahoe_api::ErrorKind::from_code(-1)),
            ErrorKind::Internal
        );
    }

    #[test]
    fn io_kinds_map() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::NotFound).into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
