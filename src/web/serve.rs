//! The gateway's HTTP server: hyper under axum's router, with what
//! `axum::serve` lacks.
//!
//! - A connection has `web.header_timeout_secs` to send a request's
//!   headers, and an idle kept-alive connection as long for its next one
//!   (hyper's header-read timer runs from the moment it waits for a
//!   request): half-sent requests cannot hold connections for ever.
//! - At most `web.max_connections` are open; one more is closed on
//!   arrival, so the gateway cannot take the file descriptors the node's
//!   storage listener needs (which has caps of its own).
//! - Only the `Host` names the gateway is reached by are answered (see
//!   [`host_allowed`]); the router answers others with `421 Misdirected
//!   Request` before anything else.
//! - A connection ends with a lingering close (see [`linger`]), so that an
//!   answer sent before the end of its request reaches the client.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Longest wait for a request's headers, or for the next request.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serve `app` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, limits: ServeLimits) {
    let service = move || TowerToHyperService::new(app.clone());
    serve_with(listener, service, limits, "the web gateway").await
}

/// Serve what `service` makes (one per connection) on `listener`, with
/// [`serve`]'s limits; `what` names the server in the log (the S3 gateway
/// serves through here too).
pub async fn serve_with<S, B>(
    listener: tokio::net::TcpListener,
    service: impl Fn() -> S,
    limits: ServeLimits,
    what: &'static str,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut refused_logged = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("{what} could not accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if !refused_logged {
                tracing::warn!(
                    "{what} has {} connections open, its limit (max_connections): \
                     closing new ones until some end",
                    limits.max_connections
                );
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        let service = service();
        let timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .without_shutdown()
                .await;
            match served {
                Ok(parts) => linger(parts.io.into_inner()).await,
                Err(e) => tracing::debug!("{what}: connection from {peer}: {e}"),
            }
        });
    }
}

/// How long, and for how many bytes, a connection is read and its bytes
/// dropped after the last answer.
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 64 << 20;

/// Close a connection whose last answer may have come before the end of
/// its request (a `413` for a body too large, a `400` for a bad form): end
/// the answer (FIN), then read what the client is still sending, and drop
/// it, until it is done, for a while. Closed at once, the socket would
/// answer the unread bytes with a reset, which makes the client's system
/// discard the answer before the client reads it.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Whether a request's `Host` names this gateway. An IP address or
/// `localhost`, with any port, always does: DNS rebinding needs a name the
/// attacker controls, and a page whose origin is an address or localhost
/// is not another site's. Any other name must be in `allowed`, as `NAME`
/// (any port) or exactly `NAME:PORT`. A request without a `Host` is not a
/// browser's (every browser sends one) and is answered.
pub fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(axum::http::header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        // `[::1]:PORT`, `NAME:PORT`; a bare IPv6 literal has no port.
        Some((n, p)) if (!n.contains(':') || n.ends_with(']')) => {
            if p.parse::<u16>().is_err() {
                return false;
            }
            n
        }
        _ => host.as_str(),
    };
    if name.is_empty() {
        return false;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || bare.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == name || a == host
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(
            axum::http::header::HOST,
            HeaderValue::from_str(h).expect("header"),
        );
        m
    }

    #[test]
    fn only_the_gateways_own_names_are_answered() {
        let none: &[String] = &[];
        for ok in [
            "127.0.0.1:3456",
            "127.0.0.1",
            "localhost:3456",
            "LOCALHOST",
            "[::1]:3456",
            "[::1]",
            "::1",
            "192.168.1.20:8080",
        ] {
            assert!(host_allowed(&host(ok), none), "{ok}");
        }
        for evil in [
            "evil.example:3456",
            "evil.example",
            "127.0.0.1.evil.example:3456",
            "localhost.evil.example",
            "localhost:3456x",
            "localhost.",
            ":3456",
            "",
        ] {
            assert!(!host_allowed(&host(evil), none), "{evil}");
        }
        assert!(host_allowed(&HeaderMap::new(), none), "no Host");
        let mine = ["tahoe.lan".to_string(), "nas.lan:8080".to_string()];
        assert!(host_allowed(&host("tahoe.lan:3456"), &mine));
        assert!(host_allowed(&host("tahoe.lan"), &mine));
        assert!(host_allowed(&host("nas.lan:8080"), &mine), "behind a proxy");
        assert!(!host_allowed(&host("nas.lan:3456"), &mine));
        assert!(!host_allowed(&host("other.lan:3456"), &mine));
    }
}
