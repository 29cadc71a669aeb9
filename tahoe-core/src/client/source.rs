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

/// A source filled as it is read: what [`pipe`]'s writer writes, for a
/// reader that reads it once, in order (an upload that needs no first
/// pass, such as a repair's re-encoding of a file's ciphertext).
pub struct PipeSource {
    shared: std::sync::Arc<Pipe>,
    size: u64,
}

/// The writing end of a [`pipe`]: an `AsyncWrite` that waits while the
/// pipe holds its capacity unread. Shut down when all is written; dropped
/// before that, the reader's next read fails.
pub struct PipeWriter {
    shared: std::sync::Arc<Pipe>,
}

struct Pipe {
    state: std::sync::Mutex<PipeState>,
    readable: std::sync::Condvar,
    capacity: usize,
}

struct PipeState {
    /// Bytes written, not yet read, as written; the first `skip` bytes of
    /// the first chunk are read already. The first unread byte is at
    /// `start` in the file; `len` bytes are held.
    chunks: std::collections::VecDeque<Vec<u8>>,
    skip: usize,
    len: usize,
    start: u64,
    /// The reader's waiting read: the pipe holds at least that much.
    want: usize,
    /// The writer is done: `Ok` when shut down, `Err` when dropped first.
    closed: Option<std::result::Result<(), ()>>,
    reader_gone: bool,
    /// The writer, waiting for room.
    waker: Option<std::task::Waker>,
}

/// A pipe of `size` bytes that holds at most `capacity` bytes between
/// its writer and its reader.
pub fn pipe(size: u64, capacity: usize) -> (PipeWriter, PipeSource) {
    let shared = std::sync::Arc::new(Pipe {
        state: std::sync::Mutex::new(PipeState {
            chunks: std::collections::VecDeque::new(),
            skip: 0,
            len: 0,
            start: 0,
            want: 0,
            closed: None,
            reader_gone: false,
            waker: None,
        }),
        readable: std::sync::Condvar::new(),
        capacity,
    });
    (
        PipeWriter {
            shared: shared.clone(),
        },
        PipeSource { shared, size },
    )
}

impl Pipe {
    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PipeState {
    /// Take the next `out.len()` bytes (held) into `out`, or drop them
    /// with `None`.
    fn take(&mut self, n: usize, mut out: Option<&mut [u8]>) {
        let mut done = 0;
        while done < n {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let k = (front.len() - self.skip).min(n - done);
            if let Some(out) = out.as_deref_mut() {
                out[done..done + k].copy_from_slice(&front[self.skip..self.skip + k]);
            }
            self.skip += k;
            done += k;
            if self.skip == front.len() {
                self.chunks.pop_front();
                self.skip = 0;
            }
        }
        self.len -= done;
        self.start += done as u64;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl PipeWriter {
    /// Whether the reader went away (and so the writer's failure is its
    /// consequence, not its cause).
    pub fn reader_gone(&self) -> bool {
        self.shared.lock().reader_gone
    }

    /// The writer cannot go on: the reader's reads fail from now on.
    pub fn fail(&self) {
        self.shared.lock().closed.get_or_insert(Err(()));
        self.shared.readable.notify_all();
    }
}

impl tokio::io::AsyncWrite for PipeWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut st = self.shared.lock();
        if st.reader_gone {
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the pipe's reader went away",
            )));
        }
        let room = self.shared.capacity.max(st.want).saturating_sub(st.len);
        if room == 0 {
            st.waker = Some(cx.waker().clone());
            return std::task::Poll::Pending;
        }
        let n = room.min(data.len());
        st.chunks.push_back(data[..n].to_vec());
        st.len += n;
        self.shared.readable.notify_all();
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.shared.lock().closed.get_or_insert(Ok(()));
        self.shared.readable.notify_all();
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.fail();
    }
}

impl Source for PipeSource {
    fn size(&self) -> u64 {
        self.size
    }

    /// Waits (on the blocking thread reading) until the bytes are written.
    /// Reads must come in order and not overlap: what was read is gone.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut st = self.shared.lock();
        loop {
            if offset < st.start {
                return Err(Error::internal(format!(
                    "a pipe read at {offset}, behind what was read already ({})",
                    st.start
                )));
            }
            let end = offset + buf.len() as u64;
            // The bytes before `offset` are not wanted: room for the writer.
            let skip = ((offset - st.start) as usize).min(st.len);
            if skip > 0 {
                st.take(skip, None);
            }
            if st.start == offset && st.len >= buf.len() {
                st.take(buf.len(), Some(buf));
                return Ok(());
            }
            match st.closed {
                Some(Ok(())) => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Io,
                        format!("the pipe ended before byte {end}"),
                    ));
                }
                Some(Err(())) => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Io,
                        "the pipe's writer stopped".to_string(),
                    ));
                }
                None => {}
            }
            if st.want != buf.len() {
                st.want = buf.len();
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
            }
            st = self
                .shared
                .readable
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for PipeSource {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.reader_gone = true;
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipe_carries_bytes_in_order_holding_little() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut w, source) = pipe(data.len() as u64, 4096);
        let shared = w.shared.clone();
        let want = data.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut most = 0;
            // Segments of 10,000 bytes, and one read larger than the
            // capacity (the pipe makes room for it).
            let mut at = 0;
            for len in std::iter::repeat_n(10_000, 40).chain([500_000]) {
                let mut buf = vec![0; len];
                source.read_at(at, &mut buf).unwrap();
                assert!(buf == want[at as usize..at as usize + len]);
                most = most.max(shared.lock().len);
                at += len as u64;
            }
            // What is skipped is dropped; reading behind fails.
            let mut buf = vec![0; 100];
            source.read_at(at + 1000, &mut buf).unwrap();
            assert!(source.read_at(0, &mut buf).is_err());
            // Read to the end: a reader that leaves early fails the
            // writer's next write (the other test), which this one's
            // writer, still writing the rest, would race into.
            let end = at + 1100;
            let mut rest = vec![0; want.len() - end as usize];
            source.read_at(end, &mut rest).unwrap();
            assert!(rest == want[end as usize..]);
            most
        });
        for piece in data.chunks(3000) {
            w.write_all(piece).await.unwrap();
        }
        w.shutdown().await.unwrap();
        let most = reader.await.unwrap();
        assert!(most <= 500_000 + 3000, "held {most}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn either_end_going_away_stops_the_other() {
        let (w, source) = pipe(100, 10);
        let reader = tokio::task::spawn_blocking(move || {
            let mut buf = [0; 50];
            source.read_at(0, &mut buf)
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        w.fail();
        assert!(reader.await.unwrap().is_err(), "the reader waited on");
        let (mut w, source) = pipe(100, 10);
        drop(source);
        assert!(w.write_all(&[1; 50]).await.is_err());
        assert!(w.reader_gone());
    }
}
