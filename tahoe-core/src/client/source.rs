//! Where an upload's plaintext comes from.
//!
//! Uploads read by position: the convergent key needs the whole plaintext
//! before the first block can be encrypted, so the data is read twice, and
//! positional reads let the pipeline fetch segments on worker threads.
//! A stream that cannot seek (a pipe, an HTTP body) is first spooled to an
//! unlinked temporary file with [`spool`]; memory stays bounded either way.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};

/// Plaintext that can be read at any offset.
pub trait Source: Send + Sync {
    /// Total bytes.
    fn size(&self) -> u64;

    /// Fill `buf` from `offset`.
    ///
    /// # Contract
    /// `offset + buf.len() <= size()`; the whole buffer is filled or an
    /// error is returned (a source that shrank is an `Io` error).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// A file on disk (its size is taken when wrapped).
pub struct FileSource {
    file: File,
    size: u64,
}

impl FileSource {
    /// Wrap an open file.
    pub fn new(file: File) -> Result<Self> {
        let size = file.metadata()?.len();
        Ok(FileSource { file, size })
    }

    /// Open a file by path.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::from(e).context(path.display()))?;
        Self::new(file)
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::from(e).context("reading the file being uploaded"))
    }
}

/// Bytes already in memory.
pub struct BytesSource(pub Bytes);

impl Source for BytesSource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset).map_err(|_| Error::invalid_input("offset"))?;
        let src = self
            .0
            .get(start..start + buf.len())
            .ok_or_else(|| Error::invalid_input("read past the end of an in-memory source"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Copy a stream into an anonymous temporary file under `dir` (created
/// with a unique name and unlinked at once, so nothing is left behind even
/// on a crash) and return it as a source. Reads in 1 MiB chunks.
pub fn spool(mut reader: impl Read, dir: &Path) -> Result<FileSource> {
    let mut name_bytes = [0u8; 12];
    getrandom::fill(&mut name_bytes).map_err(|e| Error::internal(format!("random: {e}")))?;
    let name: String = name_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!(".tahoe-spool-{name}"));
    // Plaintext: a new file only its owner can read, unlinked at once.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::from(e).context(format!("creating spool file in {}", dir.display())))?;
    let _ = std::fs::remove_file(&path);
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from(e).context("reading the upload stream")),
        };
        file.write_all_at(&buf[..n], offset)?;
        offset += n as u64;
    }
    Ok(FileSource { file, size: offset })
}
