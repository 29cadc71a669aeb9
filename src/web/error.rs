//! Errors as the web API answers them: Tahoe's status codes for each error kind, statuses of the gateway's own (413, 416), and Tahoe's texts.

use axum::http::{HeaderValue, StatusCode, header};
use tahoe_core::{Error, ErrorKind};

/// An error with a status of its own (413, 416, ...), and headers to go
/// with it.
#[derive(Debug)]
pub struct HttpError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl HttpError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// `413 Payload Too Large`.
pub(super) fn too_large(what: &str, limit: usize) -> anyhow::Error {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is larger than the {limit} bytes accepted here"),
    )
    .into()
}

/// An error's text as Tahoe words it for programs that look for its
/// exception names (`NotEnoughSharesError` for a file that cannot be read).
pub(super) fn tahoe_message(e: &anyhow::Error) -> String {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind);
    match kind {
        Some(ErrorKind::NotEnoughShares) => format!(
            "NotEnoughSharesError: This indicates that some servers were unavailable, or that \
             shares have been lost to server departure, hard drive failure, or disk corruption. \
             You should perform a filecheck on this object to learn more.\n\n\
             The full error message is:\n{e:#}"
        ),
        _ => format!("{e:#}"),
    }
}

/// Tahoe's status code for an error.
pub(super) fn status_of(e: &anyhow::Error) -> StatusCode {
    if let Some(h) = e.downcast_ref::<HttpError>() {
        return h.status;
    }
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind);
    match kind {
        Some(ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        Some(ErrorKind::AlreadyExists | ErrorKind::Conflict) => StatusCode::CONFLICT,
        Some(ErrorKind::InvalidInput | ErrorKind::Corrupt) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::PermissionDenied) => StatusCode::FORBIDDEN,
        Some(ErrorKind::NotEnoughShares) => StatusCode::GONE,
        Some(ErrorKind::Unhappy | ErrorKind::Unavailable | ErrorKind::Timeout) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
        None => StatusCode::BAD_REQUEST,
    }
}

pub(super) fn bad(msg: impl Into<String>) -> anyhow::Error {
    Error::invalid_input(msg.into()).into()
}
