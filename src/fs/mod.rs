//! The grid as a file system: one core, two front ends.
//!
//! [`tree::Fs`] is a directory cap seen as a tree of paths: it resolves
//! paths through cached listings, makes, removes and renames entries, and
//! opens files ([`open::OpenFile`]): reads stream the ranges asked for
//! with a read-ahead window for sequential reads, writes go to a private
//! spool file that is uploaded when the file is flushed or closed. The
//! FUSE mount ([`fuse`]) and the SFTP server ([`sftp`]) only translate
//! their protocol's calls into the core's; neither resolves a path or
//! uploads a file itself.
//!
//! What each front end did is told to a [`Journal`] (the gateway's
//! operations page and statistics implement it), by name, never by cap.

pub mod accounts;
pub mod control;
pub mod error;
pub mod fuse;
pub mod open;
pub mod sftp;
pub mod tree;

pub use error::{FsError, FsResult};
pub use open::OpenFile;
pub use tree::{Fs, FsConfig, Kind, Stat};

/// Which front end a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frontend {
    /// `tahoe mount`.
    Fuse,
    /// The SFTP server.
    Sftp,
    /// The S3 gateway ([`crate::s3`]).
    S3,
}

impl Frontend {
    /// Every front end, for statistics.
    pub const ALL: [Frontend; 3] = [Frontend::Fuse, Frontend::Sftp, Frontend::S3];

    /// Its name in statistics and on the operations page.
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Fuse => "fuse",
            Frontend::Sftp => "sftp",
            Frontend::S3 => "s3",
        }
    }
}

/// What the core did, for statistics: one of each kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// A path or entry looked up, or its attributes read.
    Stat,
    /// A directory listed.
    List,
    /// A file opened.
    Open,
    /// Bytes read from a file.
    Read,
    /// Bytes written to a file.
    Write,
    /// A file uploaded on flush or close.
    Upload,
    /// A directory made.
    Mkdir,
    /// A file or directory unlinked.
    Remove,
    /// An entry renamed or moved.
    Rename,
    /// Attributes set (times, size).
    SetAttr,
}

impl Call {
    /// Every kind, for statistics.
    pub const ALL: [Call; 10] = [
        Call::Stat,
        Call::List,
        Call::Open,
        Call::Read,
        Call::Write,
        Call::Upload,
        Call::Mkdir,
        Call::Remove,
        Call::Rename,
        Call::SetAttr,
    ];

    /// Its name in statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Stat => "stat",
            Call::List => "list",
            Call::Open => "open",
            Call::Read => "read",
            Call::Write => "write",
            Call::Upload => "upload",
            Call::Mkdir => "mkdir",
            Call::Remove => "remove",
            Call::Rename => "rename",
            Call::SetAttr => "setattr",
        }
    }
}

/// Where the front ends report what they do.
///
/// # Contract
/// Called on the file system's own tasks: implementations must not block
/// (count, append to a list) and must never see a cap: `name` is the
/// path the person used.
pub trait Journal: Send + Sync {
    /// A call through `via` ended, well or not.
    fn call(&self, via: Frontend, call: Call, ok: bool);

    /// A file's transfer begins (`upload` or a download of `name`), of
    /// `size` bytes when known; the handle counts bytes and tells the end.
    fn transfer(
        &self,
        via: Frontend,
        upload: bool,
        name: &str,
        size: Option<u64>,
    ) -> Box<dyn Transfer>;
}

/// One transfer in progress (see [`Journal::transfer`]).
pub trait Transfer: Send + Sync {
    /// `n` more bytes moved.
    fn add(&self, n: u64);
    /// It ended: `Ok` or why not.
    fn end(&self, outcome: Result<(), &anyhow::Error>);
}

/// A journal that keeps nothing (tests of the core alone).
pub struct NoJournal;

impl Journal for NoJournal {
    fn call(&self, _: Frontend, _: Call, _: bool) {}
    fn transfer(&self, _: Frontend, _: bool, _: &str, _: Option<u64>) -> Box<dyn Transfer> {
        Box::new(NoJournal)
    }
}

impl Transfer for NoJournal {
    fn add(&self, _: u64) {}
    fn end(&self, _: Result<(), &anyhow::Error>) {}
}
