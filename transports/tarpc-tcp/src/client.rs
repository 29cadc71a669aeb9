//! The client side: a peer reached over TCP and TLS, implementing the
//! protocol traits over tarpc's client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tahoe_core::protocol::{
    QueenCarrier, QueenRequest, QueenResponse, StorageCarrier, StorageRequest, StorageResponse,
};
use tahoe_core::{Error, Result};
use tarpc::client::RpcError;
use tarpc::context::Context;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::connection::Connection;
use crate::service::{ClientCodec, NodeClient, WireRequest, WireResponse};
use crate::tls::client_config;
use crate::{PeerAddress, TarpcTcpConfig, secs};
use std::net::IpAddr;

enum ConnState {
    Up(NodeClient),
    Down {
        retry_at: Instant,
        backoff: Duration,
        why: String,
    },
}

/// A peer, connected lazily and reconnected with backoff.
pub(crate) struct Remote {
    peer: PeerAddress,
    config: TarpcTcpConfig,
    state: Mutex<ConnState>,
}

/// A TCP connection to `host` (HOST:PORT), from `from` when given.
pub(crate) async fn tcp_connect(
    host: &str,
    from: Option<IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let Some(from) = from else {
        return tokio::net::TcpStream::connect(host).await;
    };
    let mut last = None;
    for addr in tokio::net::lookup_host(host).await? {
        if addr.is_ipv4() != from.is_ipv4() {
            continue;
        }
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind((from, 0).into())?;
        match socket.connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{host} has no address of the family of {from}"),
        )
    }))
}

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How much later than tarpc's own deadline a call is given up here.
const DEADLINE_SLACK: Duration = Duration::from_millis(500);
/// The longest wait before dialling a lost peer again: a host whose link
/// comes back is reached within this (plus the caller's own pace); one
/// dial every ten seconds of an unreachable peer costs nothing.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Remote {
    pub(crate) fn new(peer: PeerAddress, config: TarpcTcpConfig) -> Self {
        Remote {
            peer,
            config,
            state: Mutex::new(ConnState::Down {
                retry_at: Instant::now(),
                backoff: FIRST_BACKOFF,
                why: String::new(),
            }),
        }
    }

    async fn dial(&self) -> Result<NodeClient> {
        let tls = TlsConnector::from(Arc::new(client_config(&self.peer.fingerprint)?));
        let timeout = secs(self.config.connect_timeout_secs);
        let host = self.peer.host_port.clone();
        let connect = async {
            let tcp = tcp_connect(&host, self.config.source_ip()?)
                .await
                .map_err(|e| Error::unavailable(format!("cannot reach {host}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("tahoe.invalid")
                .map_err(|e| Error::internal(format!("{e}")))?;
            tls.connect(name, tcp).await.map_err(|e| {
                if e.to_string().contains("fingerprint") {
                    Error::permission_denied(format!(
                        "{host} is not the node its address names: {e}"
                    ))
                } else {
                    Error::unavailable(format!("TLS with {host} failed: {e}"))
                }
            })
        };
        let mut stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Error::timeout(format!("connecting to {host} took over {timeout:?}")))??;
        stream.get_mut().1.set_buffer_limit(Some(crate::TLS_BUFFER));
        let transport = Connection::new(stream, ClientCodec::client(&self.config));
        Ok(NodeClient::new(tarpc::client::Config::default(), transport).spawn())
    }

    /// The current client, connecting if the backoff allows.
    pub(crate) async fn client(&self) -> Result<NodeClient> {
        let mut state = self.state.lock().await;
        match &*state {
            ConnState::Up(c) => return Ok(c.clone()),
            ConnState::Down { retry_at, why, .. } if Instant::now() < *retry_at => {
                return Err(Error::unavailable(format!(
                    "{} is unreachable ({why})",
                    self.peer.host_port
                )));
            }
            ConnState::Down { .. } => {}
        }
        match self.dial().await {
            Ok(c) => {
                *state = ConnState::Up(c.clone());
                Ok(c)
            }
            Err(e) => {
                let backoff = match &*state {
                    ConnState::Down { backoff, .. } => (*backoff * 2).min(MAX_BACKOFF),
                    ConnState::Up(_) => FIRST_BACKOFF,
                };
                *state = ConnState::Down {
                    retry_at: Instant::now() + backoff,
                    backoff,
                    why: e.message().to_string(),
                };
                Err(e)
            }
        }
    }

    async fn mark_down(&self, why: &str) {
        let mut state = self.state.lock().await;
        if matches!(*state, ConnState::Up(_)) {
            tracing::info!("lost connection to {}: {why}", self.peer.host_port);
            *state = ConnState::Down {
                retry_at: Instant::now(),
                backoff: FIRST_BACKOFF,
                why: why.to_string(),
            };
        }
    }

    fn context(&self, timeout: Duration) -> Context {
        let mut ctx = tarpc::context::current();
        ctx.deadline = Instant::now() + timeout;
        ctx
    }

    async fn rpc_error(&self, e: RpcError) -> Error {
        match e {
            RpcError::DeadlineExceeded => {
                Error::timeout(format!("{} did not answer in time", self.peer.host_port))
            }
            other => {
                let why = other.to_string();
                self.mark_down(&why).await;
                Error::unavailable(format!("{}: {why}", self.peer.host_port))
            }
        }
    }
}

/// Whether a failed call never left this node: the connection was already
/// gone (the server closed it as idle, say), so sending it again on a new
/// connection cannot make it happen twice.
fn unsent(e: &RpcError) -> bool {
    matches!(e, RpcError::Shutdown | RpcError::Send(_))
}

impl Remote {
    /// One call: get a client, send with a deadline (a long poll's wait
    /// added), map transport errors. A call that could not be sent because
    /// the connection had closed is sent once more on a fresh one.
    async fn call_wire(&self, request: WireRequest) -> Result<WireResponse> {
        let timeout = secs(self.config.call_timeout_secs) + request.waits().unwrap_or_default();
        let mut again = true;
        loop {
            let client = self.client().await?;
            // tarpc enforces the deadline in its dispatch task, which can
            // itself be stuck writing to a peer whose link went silent (a
            // full socket buffer never drains): the budget is kept here
            // too, a little later, whatever tarpc is doing.
            let call = client.call(self.context(timeout), request.clone());
            let answer = match tokio::time::timeout(timeout + DEADLINE_SLACK, call).await {
                Ok(answer) => answer,
                Err(_) => {
                    // tarpc's own deadline did not fire: its dispatch task
                    // is stuck, and so is the connection; a new one is
                    // dialled on the next call.
                    self.mark_down("its call outlived tarpc's deadline").await;
                    return Err(self.rpc_error(RpcError::DeadlineExceeded).await);
                }
            };
            match answer {
                Ok(r) => return r,
                Err(e) if again && unsent(&e) => {
                    again = false;
                    self.mark_down(&e.to_string()).await;
                }
                Err(e) => return Err(self.rpc_error(e).await),
            }
        }
    }
}

#[async_trait]
impl StorageCarrier for Remote {
    async fn call(&self, request: StorageRequest) -> Result<StorageResponse> {
        match self.call_wire(WireRequest::Storage(request)).await? {
            WireResponse::Storage(r) => Ok(r),
            WireResponse::Queen(_) => Err(mismatched(&self.peer.host_port)),
        }
    }
}

#[async_trait]
impl QueenCarrier for Remote {
    async fn call(&self, request: QueenRequest) -> Result<QueenResponse> {
        match self.call_wire(WireRequest::Queen(request)).await? {
            WireResponse::Queen(r) => Ok(r),
            WireResponse::Storage(_) => Err(mismatched(&self.peer.host_port)),
        }
    }
}

fn mismatched(peer: &str) -> Error {
    Error::unavailable(format!("{peer} answered a call of the other protocol"))
}
