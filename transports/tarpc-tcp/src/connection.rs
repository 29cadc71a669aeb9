//! A client's connection as tarpc's transport: a stream of answers and a
//! sink of requests over one TLS stream. Answers are read and decoded as
//! tokio's `Framed` would; requests are written as their frames' chunks
//! ([`encode_frame`]), so the share data of a write goes from the
//! caller's buffer to TLS without being copied into a frame first.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Decoder;

use crate::service::{ClientCodec, Incoming, Outgoing, encode_frame};

/// Requests queued beyond this many bytes are written before another is
/// taken (`poll_ready`).
const BACKPRESSURE: usize = 64 << 10;

/// The most chunks one vectored write is given.
const MAX_SLICES: usize = 64;

/// The room made for reading when the buffer is full (a frame's decoder
/// makes room for the rest of a frame once it knows its length).
const READ_ROOM: usize = 8 << 10;

/// One connection to a peer, as tarpc's client uses it.
pub(crate) struct Connection<S> {
    io: S,
    codec: ClientCodec,
    read: BytesMut,
    eof: bool,
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(io: S, codec: ClientCodec) -> Self {
        Connection {
            io,
            codec,
            read: BytesMut::with_capacity(READ_ROOM),
            eof: false,
            queued: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// Write some of the queued chunks.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.queued) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        let mut written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
        if written == 0 {
            return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
        }
        self.queued_bytes -= written;
        while written > 0 {
            let Some(front) = self.queued.front_mut() else {
                break;
            };
            if front.len() <= written {
                written -= front.len();
                self.queued.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Connection<S> {
    type Item = std::io::Result<Outgoing>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.codec.decode(&mut this.read) {
                Ok(Some(answer)) => return Poll::Ready(Some(Ok(answer))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if this.eof {
                return Poll::Ready(if this.read.is_empty() {
                    None
                } else {
                    this.read.clear();
                    Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection inside a frame",
                    )))
                });
            }
            if this.read.capacity() == this.read.len() {
                this.read.reserve(READ_ROOM);
            }
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.read
            )) {
                Ok(0) => this.eof = true,
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Incoming> for Connection<S> {
    type Error = std::io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.queued_bytes >= BACKPRESSURE {
            ready!(this.poll_write_some(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, request: Incoming) -> std::io::Result<()> {
        let this = self.get_mut();
        for chunk in encode_frame(&request, this.codec.max_frame_bytes())? {
            this.queued_bytes += chunk.len();
            this.queued.push_back(chunk);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while !this.queued.is_empty() {
            ready!(this.poll_write_some(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TarpcTcpConfig;
    use crate::service::{NodeRequest, NodeResponse, ServerCodec, WireRequest, WireResponse};
    use futures::{SinkExt as _, StreamExt as _};
    use tahoe_core::protocol::{StorageRequest, StorageResponse};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn write_call(id: u64, len: usize, fill: u8) -> Incoming {
        tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id,
            message: NodeRequest::Call {
                request: WireRequest::Storage(StorageRequest::WriteBucket {
                    si: tahoe_core::kinds::storage::StorageIndex([3; 16]),
                    shnum: 4,
                    upload_secret: [5; 32],
                    offset: id * 1000,
                    data: Bytes::from(vec![fill; len]),
                }),
            },
        })
    }

    #[tokio::test]
    async fn requests_and_answers_cross_a_narrow_pipe_whole_and_in_order() {
        // A 1000-byte pipe: every vectored write is cut short, inside
        // chunks and between them.
        let (ours, mut theirs) = tokio::io::duplex(1000);
        let config = TarpcTcpConfig::default();
        let mut conn = Connection::new(ours, ClientCodec::client(&config));
        let sizes = [10usize, 100_000, 20_000, 300_000, 0];
        let peer = tokio::spawn(async move {
            let mut codec = ServerCodec::server(&TarpcTcpConfig::default());
            let mut buffer = BytesMut::new();
            let mut seen = Vec::new();
            while seen.len() < 5 {
                if let Some(tarpc::ClientMessage::Request(r)) = codec.decode(&mut buffer).unwrap() {
                    let NodeRequest::Call {
                        request:
                            WireRequest::Storage(StorageRequest::WriteBucket { data, offset, .. }),
                    } = r.message
                    else {
                        panic!("not a write")
                    };
                    let fill = r.id as u8;
                    assert!(data.iter().all(|&b| b == fill));
                    seen.push((r.id, offset, data.len()));
                    continue;
                }
                assert!(theirs.read_buf(&mut buffer).await.unwrap() > 0);
            }
            // An answer back, share data and all.
            let answer: Outgoing = tarpc::Response {
                request_id: 3,
                message: Ok(NodeResponse::Call(Ok(WireResponse::Storage(
                    StorageResponse::ReadBucket(Bytes::from(vec![9u8; 50_000])),
                )))),
            };
            for chunk in encode_frame(&answer, 1 << 20).unwrap() {
                theirs.write_all(&chunk).await.unwrap();
            }
            drop(theirs);
            seen
        });
        for (i, &len) in sizes.iter().enumerate() {
            conn.feed(write_call(i as u64, len, i as u8)).await.unwrap();
        }
        conn.flush().await.unwrap();
        let answer = conn.next().await.expect("an answer").unwrap();
        assert_eq!(answer.request_id, 3);
        let Ok(NodeResponse::Call(Ok(WireResponse::Storage(StorageResponse::ReadBucket(data))))) =
            answer.message
        else {
            panic!("not a read answer")
        };
        assert_eq!(data, Bytes::from(vec![9u8; 50_000]));
        // The peer closed after a whole frame: the stream ends cleanly.
        assert!(conn.next().await.is_none());
        let seen = peer.await.unwrap();
        let expected: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (i as u64, i as u64 * 1000, len))
            .collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_peer_that_closes_inside_a_frame_is_an_error() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let mut conn = Connection::new(ours, ClientCodec::client(&TarpcTcpConfig::default()));
        theirs.write_all(&[0, 0, 1, 0, 1, 2, 3]).await.unwrap();
        drop(theirs);
        let err = conn.next().await.expect("an error").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
