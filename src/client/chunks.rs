//! A bounded channel of byte chunks with a writer's side: a download
//! writes into it as into any [`AsyncWrite`], and the reader receives the
//! pieces as they were written (each a copy of at most `max` bytes), with
//! none of a byte pipe's further copies and compactions. At most `depth`
//! chunks wait in the channel, so memory stays bounded by `depth × max`
//! whatever the download's size. When the reader is gone the next write
//! fails with `BrokenPipe`, which stops the download.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio_util::sync::PollSender;

/// The writing side: each write sends one chunk (`wrap` makes the
/// channel's item of it).
pub struct ChunkWriter<T: Send + 'static> {
    tx: PollSender<T>,
    max: usize,
    wrap: fn(Bytes) -> T,
}

/// A channel of at most `depth` chunks of at most `max` bytes each.
pub fn channel<T: Send + 'static>(
    depth: usize,
    max: usize,
    wrap: fn(Bytes) -> T,
) -> (ChunkWriter<T>, tokio::sync::mpsc::Receiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(depth.max(1));
    let writer = ChunkWriter {
        tx: PollSender::new(tx),
        max: max.max(1),
        wrap,
    };
    (writer, rx)
}

/// The error of a write whose reader has gone away.
fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader went away")
}

impl<T: Send + 'static> AsyncWrite for ChunkWriter<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(closed())),
            Poll::Ready(Ok(())) => {}
        }
        let n = buf.len().min(this.max);
        this.tx
            .send_item((this.wrap)(Bytes::copy_from_slice(&buf[..n])))
            .map_err(|_| closed())?;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The channel ends when the writer is dropped.
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn writes_arrive_as_chunks_of_at_most_max_and_a_gone_reader_fails_the_write() {
        let (mut w, mut rx) = channel(2, 4, |b| b);
        w.write_all(b"abcdefgh").await.unwrap();
        // Bounded: with two chunks waiting, a third write waits.
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), w.write(b"ij"));
        assert!(third.await.is_err());
        assert_eq!(rx.recv().await.unwrap(), &b"abcd"[..]);
        assert_eq!(rx.recv().await.unwrap(), &b"efgh"[..]);
        w.write_all(b"ij").await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), &b"ij"[..]);
        drop(rx);
        let e = w.write(b"k").await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
