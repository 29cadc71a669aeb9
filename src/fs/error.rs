//! What a file-system call can fail with, in the terms both front ends
//! speak: each kind has an errno for FUSE and a status for SFTP.

use tahoe_core::error::ErrorKind;

/// A failed file-system call.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("no such file or directory")]
    NotFound,
    /// The name is taken.
    #[error("the name exists already")]
    Exists,
    /// A directory was expected.
    #[error("not a directory")]
    NotDir,
    /// A file was expected.
    #[error("is a directory")]
    IsDir,
    /// Only an empty directory can be removed or replaced.
    #[error("the directory is not empty")]
    NotEmpty,
    /// The mount or account holds a read-only cap, or the directory is
    /// read-only or immutable.
    #[error("read-only: {0}")]
    ReadOnly(String),
    /// A name or path the grid cannot hold (NUL, `/`, too long, not UTF-8).
    #[error("bad name: {0}")]
    BadName(String),
    /// An argument the call does not accept (a directory moved into
    /// itself, a symlink).
    #[error("{0}")]
    Invalid(String),
    /// What the file system does not do.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The grid failed (not enough servers, a corrupt file, I/O).
    #[error("{0:#}")]
    Grid(anyhow::Error),
}

/// A file-system call's result.
pub type FsResult<T> = Result<T, FsError>;

impl From<anyhow::Error> for FsError {
    fn from(e: anyhow::Error) -> FsError {
        let kind = e
            .chain()
            .find_map(|c| c.downcast_ref::<tahoe_core::error::Error>())
            .map(|t| t.kind());
        match kind {
            Some(ErrorKind::NotFound) => FsError::NotFound,
            Some(ErrorKind::AlreadyExists) => FsError::Exists,
            Some(ErrorKind::PermissionDenied) => FsError::ReadOnly(format!("{e:#}")),
            _ => FsError::Grid(e),
        }
    }
}

impl From<tahoe_core::error::Error> for FsError {
    fn from(e: tahoe_core::error::Error) -> FsError {
        FsError::from(anyhow::Error::new(e))
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> FsError {
        FsError::Grid(anyhow::Error::new(e).context("the spool file"))
    }
}

impl FsError {
    /// The errno FUSE answers with.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::ReadOnly(_) => libc::EROFS,
            FsError::BadName(_) => libc::EINVAL,
            FsError::Invalid(_) => libc::EINVAL,
            // Not ENOSYS: the kernel takes that as "this call is not
            // implemented" and stops making it (a rename2 never again).
            FsError::Unsupported(_) => libc::EOPNOTSUPP,
            FsError::Grid(_) => libc::EIO,
        }
    }
}
