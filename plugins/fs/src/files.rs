//! Filesystem primitives: errors naming the path, exact reads, fsynced
//! directories, free space.

use std::fs::{self, File};
use std::io::ErrorKind as IoKind;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use tahoe_core::{Error, Result};

pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::from(e).context(format!("{what} {}", path.display()))
}

/// The bytes of `file` (at `path`) in `range`, all of them or an error.
/// Read into the vector's spare capacity: a share read of a megabyte does
/// not first write a megabyte of zeros (4% of a storage server's time in
/// a verify, by `perf`).
pub(crate) fn read_exactly(file: &File, path: &Path, range: Range<u64>) -> Result<Vec<u8>> {
    let len = range.end - range.start;
    let mut buf = Vec::with_capacity(len as usize);
    let mut f = file;
    f.seek(SeekFrom::Start(range.start))
        .and_then(|_| f.take(len).read_to_end(&mut buf))
        .map_err(|e| io_err("read", path, e))?;
    if buf.len() as u64 != len {
        let e = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        return Err(io_err("read", path, e));
    }
    Ok(buf)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", dir, e))
}

/// Create `dir` and any missing parents, fsyncing each parent that gained
/// an entry so the new directories survive a crash.
pub(crate) fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == IoKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("create directory", dir, e)),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Bytes available to unprivileged users on the filesystem holding `path`.
#[allow(unsafe_code)]
pub(crate) fn available_bytes(path: &Path) -> Result<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid_input("path contains a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to
    // writable memory of the right type; statvfs initializes it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io_err("statvfs", path, std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so `st` is initialized.
    let st = unsafe { st.assume_init() };
    // The field types are 32-bit on some targets.
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
