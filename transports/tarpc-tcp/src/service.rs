//! The tarpc service that carries `tahoe_core::protocol`: its definition,
//! the dispatch of its calls to a node's services, and the vetting and
//! coding of its frames. The server loop is in `server.rs`, the client in
//! `client.rs`.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tahoe_core::protocol::transport::{LocalServices, service_not_offered};
use tahoe_core::protocol::{
    QueenRequest, QueenResponse, StorageRequest, StorageResponse, serve_queen, serve_storage,
};
use tahoe_core::{Error, Result};
use tarpc::context::Context;
use tarpc::tokio_serde::formats::Bincode;
use tokio_util::codec::LengthDelimitedCodec;

use crate::TarpcTcpConfig;

/// One call of either protocol, as it crosses the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum WireRequest {
    /// A storage call.
    Storage(StorageRequest),
    /// A queen call.
    Queen(QueenRequest),
}

/// The answer to a [`WireRequest`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum WireResponse {
    Storage(StorageResponse),
    Queen(QueenResponse),
}

impl WireRequest {
    /// How long the call may wait at the peer before it answers (a long
    /// poll): added to its deadline, and not a call whose memory needs a
    /// permit.
    pub(crate) fn waits(&self) -> Option<std::time::Duration> {
        match self {
            WireRequest::Queen(q) => q.waits(),
            WireRequest::Storage(_) => None,
        }
    }
}

/// The tarpc service: one method carries every call of both protocols
/// (`tahoe_core::protocol` lists them).
#[tarpc::service]
pub(crate) trait Node {
    async fn call(request: WireRequest) -> Result<WireResponse, Error>;
}

/// The server side: dispatches to the node's local services.
#[derive(Clone)]
pub(crate) struct NodeServer {
    pub(crate) services: LocalServices,
}

impl Node for NodeServer {
    async fn call(self, _: Context, request: WireRequest) -> Result<WireResponse> {
        match request {
            WireRequest::Storage(r) => {
                let storage = self
                    .services
                    .storage
                    .as_ref()
                    .ok_or_else(|| service_not_offered("storage"))?;
                serve_storage(storage.as_ref(), r)
                    .await
                    .map(WireResponse::Storage)
            }
            WireRequest::Queen(r) => {
                let queen = self
                    .services
                    .queen
                    .as_ref()
                    .ok_or_else(|| service_not_offered("queen"))?;
                serve_queen(queen.as_ref(), r)
                    .await
                    .map(WireResponse::Queen)
            }
        }
    }
}

/// Frames: a length prefix, at most `max_frame_bytes` each way.
pub(crate) fn codec(config: &TarpcTcpConfig) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(config.max_frame_bytes)
        .new_codec()
}

/// The longest deadline a request may carry. tarpc turns the relative
/// deadline a peer sends into `Instant::now() + deadline`, which panics on
/// overflow (found by the `rpc_frame` fuzz target); frames with a longer one
/// are refused before tarpc decodes them.
const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// The start of a request frame as bincode lays it out: tarpc's
/// `ClientMessage` variant, and for a request the context's deadline, its
/// first field.
#[derive(serde::Deserialize)]
enum FrameHead {
    Request(Duration),
    Cancel,
}

fn vet_frame(frame: &[u8]) -> std::io::Result<()> {
    use bincode::Options as _;
    let head: FrameHead = bincode::DefaultOptions::new()
        .allow_trailing_bytes()
        .deserialize(frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    match head {
        FrameHead::Request(d) if d > MAX_DEADLINE => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a request deadline {d:?} away"),
        )),
        _ => Ok(()),
    }
}

/// A request or cancellation as a peer sent it.
pub(crate) type Incoming = tarpc::ClientMessage<NodeRequest>;
/// An answer as the server sends it.
pub(crate) type Outgoing = tarpc::Response<NodeResponse>;

/// tarpc's own wire format (bincode), as its client writes and reads it.
fn wire() -> Bincode<Incoming, Outgoing> {
    Bincode::default()
}

/// One frame from a peer: vetted, then decoded as tarpc's client wrote it.
pub(crate) fn decode_request(frame: &BytesMut) -> std::io::Result<Incoming> {
    use tarpc::tokio_serde::Deserializer;
    vet_frame(frame)?;
    Pin::new(&mut wire()).deserialize(frame)
}

/// One answer, as tarpc's client reads it.
pub(crate) fn encode_response(answer: &Outgoing) -> std::io::Result<Bytes> {
    use tarpc::tokio_serde::Serializer;
    Pin::new(&mut wire()).serialize(answer)
}

/// Decode one incoming frame as the server does; whether it decoded. For
/// the fuzz target of RPC frames: a peer's frame must decode or be refused,
/// never panic or allocate beyond it.
pub fn decode_request_frame(frame: &[u8]) -> bool {
    decode_request(&BytesMut::from(frame)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarpc::tokio_serde::Serializer;

    #[test]
    fn frames_decode_or_are_refused_without_panicking() {
        // Found by the rpc_frame fuzz target: a request whose deadline is
        // so far away that tarpc's `now + deadline` overflowed.
        let far = [
            0x00, 0xfd, 0xfe, 0xeb, 0x65, 0x0d, 0xc5, 0x14, 0xc4, 0xeb, 0xeb,
        ];
        assert!(!decode_request_frame(&far));
        // A real request still decodes.
        let mut codec =
            Bincode::<tarpc::Response<()>, tarpc::ClientMessage<NodeRequest>>::default();
        let request = tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 7,
            message: NodeRequest::Call {
                request: WireRequest::Storage(StorageRequest::Version {}),
            },
        });
        let frame = Pin::new(&mut codec).serialize(&request).expect("serialize");
        assert!(decode_request_frame(&frame));
    }
}
