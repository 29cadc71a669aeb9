//! A hostile peer for tests of the server's defences (feature `testing`):
//! a connection that sends calls as fast as the server takes them and
//! never reads an answer, which no honest client does.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::SinkExt;
use tahoe_core::{Error, Result};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::connection::Connection;
use crate::service::{ClientCodec, Incoming, NodeRequest};
use crate::tls::client_config;
use crate::{PeerAddress, TarpcTcpConfig};

/// A call to send over and over: one of either protocol
/// (`tahoe_core::protocol`'s requests).
pub use crate::service::WireRequest as Flood;

/// A connection that writes calls and reads nothing.
pub struct Flooder {
    frames: Connection<TlsStream<TcpStream>>,
    next_id: u64,
}

impl Flooder {
    /// Connect to `address` (`tahoe+tcp://...`), from `from` when given.
    pub async fn connect(address: &str, from: Option<IpAddr>) -> Result<Self> {
        let peer = PeerAddress::parse(address)?;
        let config = TarpcTcpConfig {
            connect_from: from.map(|ip| ip.to_string()).unwrap_or_default(),
            ..TarpcTcpConfig::default()
        };
        let tcp = crate::client::tcp_connect(&peer.host_port, config.source_ip()?)
            .await
            .map_err(|e| Error::unavailable(format!("{e}")))?;
        let tls = TlsConnector::from(Arc::new(client_config(&peer.fingerprint)?));
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("tahoe.invalid")
            .map_err(|e| Error::internal(format!("{e}")))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| Error::unavailable(format!("TLS: {e}")))?;
        Ok(Flooder {
            frames: Connection::new(stream, ClientCodec::client(&config)),
            next_id: 0,
        })
    }

    /// Send `call` up to `count` times, for at most `within`: how many
    /// went out before the server stopped taking them or closed the
    /// connection.
    pub async fn send(&mut self, call: &Flood, count: usize, within: Duration) -> usize {
        let until = Instant::now() + within;
        let mut sent = 0;
        while sent < count {
            let left = until.saturating_duration_since(Instant::now());
            let frame = self.request(call);
            match tokio::time::timeout(left, self.frames.send(frame)).await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
        }
        sent
    }

    fn request(&mut self, call: &Flood) -> Incoming {
        self.next_id += 1;
        let mut context = tarpc::context::current();
        context.deadline = Instant::now() + Duration::from_secs(600);
        let message = NodeRequest::Call {
            request: call.clone(),
        };
        tarpc::ClientMessage::Request(tarpc::Request {
            context,
            id: self.next_id,
            message,
        })
    }
}

/// A TLS connection over loopback TCP set up as this transport sets up its
/// own (the same provider, cipher suites and certificate kind): its client
/// and server ends, for measuring what TLS and TCP cost on a machine
/// (benches/grid/floor.rs).
pub async fn loopback_pair() -> Result<(
    TlsStream<TcpStream>,
    tokio_rustls::server::TlsStream<TcpStream>,
)> {
    let id = crate::tls::Identity::ephemeral()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(id.server_config()?));
    let connector = TlsConnector::from(Arc::new(client_config(&id.fingerprint)?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("tahoe.invalid")
        .map_err(|e| Error::internal(format!("server name: {e}")))?;
    let (client, server) = tokio::join!(
        async {
            let tcp = TcpStream::connect(addr).await?;
            connector.connect(name, tcp).await
        },
        async {
            let (tcp, _) = listener.accept().await?;
            acceptor.accept(tcp).await
        }
    );
    Ok((client?, server?))
}
