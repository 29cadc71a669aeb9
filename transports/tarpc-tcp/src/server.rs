//! The listener: accepting connections and serving each.
//!
//! A peer's socket must never hold up anyone else. So a connection's
//! requests are read, served and answered in three independent parts:
//!
//! - the reader decodes a request, then waits for one of the listener's
//!   permits (they bound the memory of requests being served) and starts
//!   it; it reads at most [`REQUESTS_PER_CONNECTION`] requests ahead of the
//!   answers computed;
//! - a request holds its permit only while the node computes the answer:
//!   the permit is given back before the answer is queued, whether or not
//!   the peer ever reads it (a long poll of the queen holds none, as it
//!   only waits);
//! - the writer sends queued answers. Each one counts against its peer's
//!   budget of unread answers (`max_unread_answers`,
//!   `max_unread_answer_bytes`, over all the peer's connections) until it
//!   has been written; a peer over that budget, or a writer that makes no
//!   progress for the call deadline, has its connection closed.
//!
//! Closing a connection drops its running requests (and their permits),
//! its unwritten answers (and their charges) and its storage session (whose
//! unfinished uploads are aborted) at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::{AbortHandle, abortable};
use futures::stream::FuturesUnordered;
use tahoe_core::protocol::transport::LocalServices;
use tarpc::server::Serve;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;
use tokio_util::sync::PollSemaphore;

use crate::peers::{Admitted, Charge, Peers, UnreadLimits};
use crate::service::{Node, NodeRequest, NodeServer, ServerCodec, encode_frame};
use crate::tls::Identity;
use crate::{TarpcTcpConfig, secs};

/// Most requests one connection has being served at once.
pub(crate) const REQUESTS_PER_CONNECTION: usize = 64;

/// What every connection of a listener shares.
struct Limits {
    config: TarpcTcpConfig,
    /// One permit per request being served on the whole listener: with
    /// every request at most a frame, this bounds the memory they take.
    requests: Arc<Semaphore>,
    peers: Arc<Peers>,
    unread: UnreadLimits,
}

/// Accept connections until told to stop.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    config: TarpcTcpConfig,
    services: LocalServices,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match identity.server_config() {
        Ok(c) => TlsAcceptor::from(Arc::new(c)),
        Err(e) => {
            tracing::error!("cannot serve: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let limits = Arc::new(Limits {
        requests: Arc::new(Semaphore::new(config.requests_in_flight())),
        peers: Arc::new(Peers::default()),
        unread: UnreadLimits {
            answers: config.max_unread_answers,
            bytes: config.max_unread_answer_bytes,
        },
        config: config.clone(),
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, say: wait for some to close.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "refusing connection from {peer}: {} connections open",
                config.max_connections
            );
            continue;
        };
        let Some(admitted) = limits.peers.admit(peer.ip(), config.max_connections_per_ip) else {
            tracing::warn!(
                "refusing connection from {peer}: {} connections open from its address",
                config.max_connections_per_ip,
            );
            continue;
        };
        // Each connection gets its own sessions, charged to its peer and
        // dropped with the connection.
        let caller = admitted.peer.caller();
        let conn = NodeServer {
            services: LocalServices {
                storage: services
                    .storage
                    .as_ref()
                    .map(|s| s.open_session(&caller).unwrap_or_else(|| s.clone())),
                queen: services
                    .queen
                    .as_ref()
                    .map(|q| q.open_session(&caller).unwrap_or_else(|| q.clone())),
            },
        };
        let (tls, limits) = (tls.clone(), limits.clone());
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = permit;
            tokio::select! {
                _ = connection(stream, peer, tls, conn, limits, admitted) => {}
                _ = stop.changed() => {}
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// Records when bytes last moved on a stream, so idle connections can be
/// told from busy ones.
struct Watched<S> {
    inner: S,
    last: Arc<StdMutex<Instant>>,
}

fn touch(last: &StdMutex<Instant>) {
    if let Ok(mut t) = last.lock() {
        *t = Instant::now();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            touch(&self.last);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            touch(&self.last);
        }
        r
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An answer ready to go (its frame's chunks, [`encode_frame`]), and its
/// place in the peer's unread budget.
type Queued = (Vec<Bytes>, Charge);

/// The bytes of a frame's chunks.
fn frame_len(chunks: &[Bytes]) -> u64 {
    chunks.iter().map(|c| c.len() as u64).sum()
}

/// Chunks smaller than this are gathered into one write; larger ones (the
/// share data of read answers) go to the socket (TLS) straight from
/// where they were read.
const GATHER_BYTES: usize = 64 << 10;

/// Write queued answers (whole frames) until the queue closes. Every
/// answer available is handed to the socket before one flush; a write or
/// flush that makes no progress for `stall` fails the connection.
async fn write_answers<W: AsyncWrite + Unpin>(
    sink: W,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    stall: Duration,
) -> std::io::Result<()> {
    let mut sink = BufWriter::with_capacity(GATHER_BYTES, sink);
    let stalled = || {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the peer read nothing for {stall:?}"),
        )
    };
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some((frame, charge)) = next {
            for chunk in frame {
                tokio::time::timeout(stall, sink.write_all(&chunk))
                    .await
                    .map_err(|_| stalled())??;
            }
            drop(charge);
            next = queue.try_recv().ok();
        }
        tokio::time::timeout(stall, sink.flush())
            .await
            .map_err(|_| stalled())??;
    }
    Ok(())
}

/// A request being served: its id, and its answer's frame (`None` when
/// it was cancelled or passed its deadline: nobody waits for it).
type Running = Pin<Box<dyn Future<Output = (u64, Option<std::io::Result<Vec<Bytes>>>)> + Send>>;

/// Why a connection's loop ended.
enum End {
    /// The peer closed its side: answers already computed may still go.
    PeerDone,
    /// Misbehaviour, a budget or a failure: close now.
    Close,
}

/// Serve one connection until it closes, misbehaves or stays idle.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    server: NodeServer,
    limits: Arc<Limits>,
    admitted: Admitted,
) {
    let config = &limits.config;
    let _ = stream.set_nodelay(true);
    let handshake =
        tokio::time::timeout(secs(config.connect_timeout_secs), tls.accept(stream)).await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!("TLS handshake with {peer} timed out");
            return;
        }
    };
    let last = Arc::new(StdMutex::new(Instant::now()));
    let (read_half, write_half) = tokio::io::split(Watched {
        inner: stream,
        last: last.clone(),
    });
    let mut frames = FramedRead::new(read_half, ServerCodec::server(config));
    let (queue, queued) = mpsc::unbounded_channel::<Queued>();
    let mut writer = pin!(write_answers(
        write_half,
        queued,
        secs(config.call_timeout_secs),
    ));
    let mut permits = PollSemaphore::new(limits.requests.clone());
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    let mut cancels: HashMap<u64, AbortHandle> = HashMap::new();
    // A request read and waiting for a permit.
    let mut waiting: Option<tarpc::Request<NodeRequest>> = None;
    let idle = secs(config.idle_timeout_secs);
    let end = loop {
        let room = running.len() < REQUESTS_PER_CONNECTION && waiting.is_none();
        tokio::select! {
            w = &mut writer => {
                match w {
                    Ok(()) => tracing::debug!("the answers to {peer} ended"),
                    Err(e) => tracing::warn!("closing the connection from {peer}: {e}"),
                }
                break End::Close;
            }
            Some((id, answer)) = running.next(), if !running.is_empty() => {
                touch(&last);
                cancels.remove(&id);
                match answer {
                    None => {}
                    Some(Ok(frame)) => match admitted.peer.charge(frame_len(&frame), &limits.unread) {
                        Ok(charge) => {
                            if queue.send((frame, charge)).is_err() {
                                break End::Close;
                            }
                        }
                        Err(why) => {
                            tracing::warn!("closing the connection from {peer}: {why}");
                            break End::Close;
                        }
                    },
                    Some(Err(e)) => {
                        tracing::error!("an answer to {peer} could not be encoded: {e}");
                        break End::Close;
                    }
                }
            }
            permit = std::future::poll_fn(|cx| permits.poll_acquire(cx)), if waiting.is_some() => {
                let (Some(permit), Some(request)) = (permit, waiting.take()) else {
                    break End::Close;
                };
                start(&server, request, Some(permit), &mut running, &mut cancels, config.max_frame_bytes);
            }
            frame = frames.next(), if room => match frame {
                Some(Ok(tarpc::ClientMessage::Request(request))) => {
                    let NodeRequest::Call { request: call } = &request.message;
                    if call.waits().is_some() {
                        // It only waits: no memory to bound.
                        start(&server, request, None, &mut running, &mut cancels, config.max_frame_bytes);
                    } else {
                        waiting = Some(request);
                    }
                }
                Some(Ok(tarpc::ClientMessage::Cancel { request_id, .. })) => {
                    if waiting.as_ref().is_some_and(|r| r.id == request_id) {
                        waiting = None;
                        // Leave the queue for a permit: one handed to this
                        // connection now would sit unused.
                        permits = PollSemaphore::new(limits.requests.clone());
                    }
                    if let Some(h) = cancels.remove(&request_id) {
                        h.abort();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("closing the connection from {peer}: {e}");
                    break End::Close;
                }
                None => {
                    tracing::debug!("connection from {peer} closed");
                    break End::PeerDone;
                }
            },
            // Idle: nothing being served and no bytes moved for `idle`.
            _ = tokio::time::sleep(idle / 4), if running.is_empty() && waiting.is_none() => {
                if last.lock().map(|t| t.elapsed() >= idle).unwrap_or(true) {
                    tracing::debug!("closing the connection from {peer}: idle for {idle:?}");
                    break End::Close;
                }
            }
        }
    };
    if let End::PeerDone = end {
        // A peer that sent its last request and closed its side still gets
        // the answers, briefly.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Some((_, answer)) = running.next().await {
                let Some(Ok(frame)) = answer else { continue };
                let Ok(charge) = admitted.peer.charge(frame_len(&frame), &limits.unread) else {
                    break;
                };
                if queue.send((frame, charge)).is_err() {
                    break;
                }
            }
            drop(queue);
            let _ = writer.await;
        })
        .await;
    }
}

/// Start serving `request`, holding `permit` until its answer is computed.
fn start(
    server: &NodeServer,
    request: tarpc::Request<NodeRequest>,
    permit: Option<OwnedSemaphorePermit>,
    running: &mut FuturesUnordered<Running>,
    cancels: &mut HashMap<u64, AbortHandle>,
    max_frame_bytes: usize,
) {
    let id = request.id;
    let deadline = tokio::time::Instant::from_std(request.context.deadline);
    let serve = server.clone().serve();
    let (work, handle) = abortable(async move {
        let answer =
            tokio::time::timeout_at(deadline, serve.serve(request.context, request.message)).await;
        drop(permit);
        // Past its deadline the caller has given up: no answer.
        let message = answer.ok()?;
        Some(encode_frame(
            &tarpc::Response {
                request_id: id,
                message,
            },
            max_frame_bytes,
        ))
    });
    cancels.insert(id, handle);
    running.push(Box::pin(async move { (id, work.await.ok().flatten()) }));
}
