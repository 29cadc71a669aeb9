//! The S3 gateway: buckets and objects over a directory cap.
//!
//! [s3s] parses S3's requests, checks their signatures (SigV4 in headers,
//! presigned URLs, unsigned and chunked payloads) against the keys in
//! `private/s3-credentials` ([`credentials`]), and writes S3's answers and
//! error XML; [`gateway::Gateway`] serves the calls on the file-system core
//! ([`crate::fs::Fs`]), one tree per key, its root the key's directory cap.
//! The HTTP server is the web gateway's accept loop
//! (`web::serve`: connection cap, header timeout), on a port of
//! its own, loopback unless configured. `docs/s3.md` tells the mapping
//! and what is served.
//!
//! Decisions:
//! - A request must be signed by a known key: there is no anonymous
//!   access, and no bucket policy or ACL (a key's authority is its cap).
//! - Buckets are named as directory entries are (any name without `/`),
//!   not only as AWS's DNS rules allow, so that directories made by other
//!   front ends can be buckets; clients address them path-style.
//! - No `Host` check as the web gateway makes against DNS rebinding: a
//!   page cannot sign a request without the secret key.

pub mod credentials;
pub mod gateway;
pub mod keys;
pub mod list;
pub mod meta;
pub mod multipart;
pub mod parts_key;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use s3s::service::S3ServiceBuilder;
use tahoe_core::plugin::config::S3Section;

use crate::client::GridClient;
use crate::fs::Journal;

/// The largest XML body a request may send (DeleteObjects of 1,000 keys
/// of 1,024 bytes fits).
const XML_MAX: usize = 2 << 20;

/// Accept any bucket name a directory entry can have (see the module
/// docs); names are checked again as entry names when used.
struct EntryNames;

impl s3s::validation::NameValidation for EntryNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        keys::bucket_path(name).is_ok()
    }
}

/// Start the S3 gateway as `s3` configures it; the address it listens on
/// and its task (the server and the expiry of abandoned uploads).
pub async fn start(
    s3: &S3Section,
    basedir: &std::path::Path,
    grid: Arc<GridClient>,
    spool: PathBuf,
    journal: Arc<dyn Journal>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let credentials = Arc::new(credentials::Credentials::load(
        &basedir.join(&s3.credentials_file),
    )?);
    let expiry = Duration::from_secs(s3.multipart_expiry_secs.max(1));
    let uploads = Arc::new(multipart::Uploads::new(spool.join("s3-uploads"), expiry)?);
    let gateway = gateway::Gateway {
        grid,
        credentials: credentials.clone(),
        spool,
        journal,
        uploads: uploads.clone(),
        region: s3.region.clone(),
        body_timeout: Duration::from_secs(s3.body_timeout_secs.max(1)),
        trees: Default::default(),
    };
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth((*credentials).clone());
    builder.set_validation(EntryNames);
    let mut config = s3s::config::S3Config::default();
    config.xml_max_body_size = XML_MAX;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        config,
    ))));
    let service = builder.build();
    let ip: std::net::IpAddr = s3
        .bind
        .parse()
        .with_context(|| format!("s3.bind = {:?} is not an IP address", s3.bind))?;
    let listener = tokio::net::TcpListener::bind((ip, s3.port))
        .await
        .with_context(|| format!("listening on {ip}:{} for S3", s3.port))?;
    let bound = listener.local_addr()?;
    tracing::info!("S3 at http://{bound} for {} key(s)", credentials.len());
    let limits = crate::web::serve::ServeLimits {
        header_timeout: Duration::from_secs(s3.header_timeout_secs.max(1)),
        max_connections: s3.max_connections,
    };
    let task = tokio::spawn(async move {
        let sweep = async {
            let every = Duration::from_secs(600).min(expiry / 4);
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(250)));
            loop {
                tick.tick().await;
                let n = uploads.expire();
                if n > 0 {
                    tracing::info!("S3: removed {n} multipart upload(s) left unfinished");
                }
            }
        };
        let make = move || {
            let service = service.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let service = service.clone();
                async move {
                    let body = declares_body(&req);
                    let answer = match xml_too_large(&req) {
                        Some(refused) => Ok(refused),
                        None => hyper::service::Service::call(&service, req).await,
                    };
                    answer.map(|a| close_after_refusal(a, body))
                }
            })
        };
        let serve = crate::web::serve::serve_with(listener, make, limits, "the S3 gateway");
        tokio::select! {
            () = serve => {}
            () = sweep => {}
        }
    });
    Ok((bound, task))
}

/// Whether a request says a body follows its head.
fn declares_body<B>(req: &hyper::Request<B>) -> bool {
    let h = req.headers();
    h.contains_key(hyper::header::TRANSFER_ENCODING)
        || h.get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// An error answer to a request with a body closes the connection: the
/// body may not have been read (a bad key, a missing bucket, an oversized
/// XML body are refused first), and a client that sent `Expect:
/// 100-continue` and was answered before it sent the body (boto3 does)
/// sends its next request instead. hyper, reading the body it was promised
/// to keep the connection in step, would take that request's first bytes
/// as the old body and parse the rest (`UT /bucket/key ...`) as a request,
/// which fails its signature. That is the likely cause (inferred, not
/// reproduced) of a SignatureDoesNotMatch the boto3 test met once under
/// load, for the request after four refused PUTs.
fn close_after_refusal(mut answer: s3s::HttpResponse, body: bool) -> s3s::HttpResponse {
    let status = answer.status();
    if body && (status.is_client_error() || status.is_server_error()) {
        answer.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    answer
}

/// A request whose body is XML (DeleteObjects, CompleteMultipartUpload:
/// a POST with `delete` or `uploadId`) and says it is longer than
/// [`XML_MAX`]: refused before its body is read, as S3 refuses it.
/// (s3s's own limit answers such a body with a 500.)
fn xml_too_large<B>(req: &hyper::Request<B>) -> Option<s3s::HttpResponse> {
    let query = req.uri().query().unwrap_or_default();
    let xml = req.method() == hyper::Method::POST
        && query
            .split('&')
            .any(|p| p == "delete" || p.starts_with("delete=") || p.starts_with("uploadId="));
    let len: u64 = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    if !xml || len <= XML_MAX as u64 {
        return None;
    }
    let e = s3s::S3Error::with_message(
        s3s::S3ErrorCode::MaxMessageLengthExceeded,
        format!("an XML body of more than {XML_MAX} bytes"),
    );
    e.to_http_response().ok()
}
