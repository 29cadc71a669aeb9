//! The tarpc service that carries `tahoe_core::protocol`: its definition,
//! the dispatch of its calls to a node's services, and the vetting and
//! coding of its frames. The server loop is in `server.rs`, the client in
//! `client.rs`.

use std::marker::PhantomData;
use std::time::Duration;

use bincode::Options as _;
use bytes::{BufMut, Bytes, BytesMut};
use tahoe_core::protocol::frame;
use tahoe_core::protocol::transport::{LocalServices, service_not_offered};
use tahoe_core::protocol::{
    QueenRequest, QueenResponse, StorageRequest, StorageResponse, serve_queen, serve_storage,
};
use tahoe_core::{Error, Result};
use tarpc::context::Context;
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

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

fn vet_request(frame: &[u8]) -> std::io::Result<()> {
    let head: FrameHead = wire()
        .allow_trailing_bytes()
        .deserialize(frame)
        .map_err(invalid)?;
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

/// The message encoding: bincode with its default options, as tarpc's
/// serde transport wrote it (`tokio_serde`'s `Bincode`), so nodes of
/// earlier versions understand each other.
fn wire() -> bincode::DefaultOptions {
    bincode::DefaultOptions::new()
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Frames on the wire: a 4-byte big-endian length (the layout of tokio's
/// `LengthDelimitedCodec`, which tarpc's serde transport used), then one
/// message in bincode, at most `max_frame_bytes` each way.
///
/// Encoding makes a frame's chunks ([`encode_frame`]): its bytes, with the
/// share data of the message beside them rather than copied in; decoding
/// turns the share data of a message into slices of its frame
/// ([`tahoe_core::protocol::frame`]). So a block crossing a connection is
/// copied by TLS as it encrypts and once by the receiver (besides TLS),
/// where a serialize-then-frame transport copies it three times more.
pub(crate) struct FrameCodec<In, Out> {
    frames: LengthDelimitedCodec,
    /// Checks a frame before it is decoded.
    vet: fn(&[u8]) -> std::io::Result<()>,
    types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> FrameCodec<In, Out> {
    fn with_vet(config: &TarpcTcpConfig, vet: fn(&[u8]) -> std::io::Result<()>) -> Self {
        FrameCodec {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(config.max_frame_bytes)
                .new_codec(),
            vet,
            types: PhantomData,
        }
    }
}

/// What a client reads; it writes frames made by [`encode_frame`].
pub(crate) type ClientCodec = FrameCodec<Outgoing, Incoming>;
/// What a server reads (requests, vetted); it writes frames made by
/// [`encode_frame`].
pub(crate) type ServerCodec = FrameCodec<Incoming, Outgoing>;

impl ClientCodec {
    pub(crate) fn client(config: &TarpcTcpConfig) -> Self {
        Self::with_vet(config, |_| Ok(()))
    }
}

impl ServerCodec {
    pub(crate) fn server(config: &TarpcTcpConfig) -> Self {
        Self::with_vet(config, vet_request)
    }
}

impl<In: serde::de::DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<In>> {
        let Some(frame) = self.frames.decode(src)? else {
            return Ok(None);
        };
        (self.vet)(&frame)?;
        decode_frame(&frame.freeze()).map(Some)
    }
}

impl<In, Out> FrameCodec<In, Out> {
    /// The largest frame either way.
    pub(crate) fn max_frame_bytes(&self) -> usize {
        self.frames.max_frame_length()
    }
}

/// One message from `frame`, its share data slices of the frame.
fn decode_frame<T: serde::de::DeserializeOwned>(frame: &Bytes) -> std::io::Result<T> {
    tahoe_core::protocol::frame::decode_within(frame, |f| wire().deserialize(f)).map_err(invalid)
}

/// `item`'s frame, its length first, as chunks to be written one after
/// the other: share data of 16 KiB or more are chunks of their own,
/// shared with `item`, not copied ([`frame::encode_beside`]). Refused when
/// the message is over `max` bytes.
pub(crate) fn encode_frame(
    item: &impl serde::Serialize,
    max: usize,
) -> std::io::Result<Vec<Bytes>> {
    let len = usize::try_from(wire().serialized_size(item).map_err(invalid)?)
        .ok()
        .filter(|&l| l <= max && u32::try_from(l).is_ok())
        .ok_or_else(|| invalid(format!("a message over the {max}-byte frame limit")))?;
    let mut head = BytesMut::with_capacity(4 + len.min(HEAD_BYTES));
    head.put_u32(len as u32);
    let chunks = frame::encode_beside(head, |w| wire().serialize_into(w, item)).map_err(invalid)?;
    debug_assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 4 + len);
    Ok(chunks)
}

/// The room first made for a frame's own bytes: all of a message without
/// share data, the fields before it for one with.
const HEAD_BYTES: usize = 512;

/// Decode one incoming frame (without its length) as the server does;
/// whether it decoded. For the fuzz target of RPC frames: a peer's frame
/// must decode or be refused, never panic or allocate beyond it.
pub fn decode_request_frame(frame: &[u8]) -> bool {
    vet_request(frame).is_ok() && decode_frame::<Incoming>(&Bytes::copy_from_slice(frame)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use tarpc::tokio_serde::Serializer;
    use tarpc::tokio_serde::formats::Bincode;
    use tokio_util::codec::Encoder as _;

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

    /// A write of `len` bytes of share data, as a client sends it.
    fn write_call(len: usize) -> Incoming {
        tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 9,
            message: NodeRequest::Call {
                request: WireRequest::Storage(StorageRequest::WriteBucket {
                    si: tahoe_core::kinds::storage::StorageIndex([3; 16]),
                    shnum: 4,
                    upload_secret: [5; 32],
                    offset: 77,
                    data: Bytes::from(vec![6u8; len]),
                }),
            },
        })
    }

    /// `message` as tarpc's serde transport framed it: bincode by
    /// tokio_serde, then tokio's length-delimited frames.
    fn reference_frame<T: serde::Serialize + Unpin>(message: &T) -> BytesMut {
        let body = Pin::new(&mut Bincode::<(), T>::default())
            .serialize(message)
            .unwrap();
        let mut frame = BytesMut::new();
        LengthDelimitedCodec::new()
            .encode(body, &mut frame)
            .unwrap();
        frame
    }

    #[test]
    fn frames_are_the_ones_tarpcs_serde_transport_made() {
        // Earlier versions used tarpc's serde transport: what they sent
        // decodes, and what we send is byte for byte what they sent (a
        // request's deadline is serialized relative to the moment of
        // writing, so an answer is compared).
        let config = TarpcTcpConfig::default();
        let answer: Outgoing = tarpc::Response {
            request_id: 5,
            message: Ok(NodeResponse::Call(Ok(WireResponse::Storage(
                StorageResponse::ReadBucket(Bytes::from(vec![8u8; 70_000])),
            )))),
        };
        let chunks = encode_frame(&answer, config.max_frame_bytes).unwrap();
        let ours: BytesMut = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(ours, reference_frame(&answer));
        // The share data went beside the frame's bytes, not through them.
        let StorageResponse::ReadBucket(sent) = read_answer(&answer) else {
            unreachable!()
        };
        assert!(chunks.iter().any(|c| c.as_ptr() == sent.as_ptr()));
        let mut buffer = BytesMut::from(&ours[..]);
        let frame_memory = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let decoded = ClientCodec::client(&config)
            .decode(&mut buffer)
            .unwrap()
            .expect("a whole frame");
        let Ok(NodeResponse::Call(Ok(WireResponse::Storage(StorageResponse::ReadBucket(data))))) =
            decoded.message
        else {
            panic!("not a read answer")
        };
        assert_eq!(data, Bytes::from(vec![8u8; 70_000]));
        // The share data was not copied out of the frame.
        assert!(frame_memory.contains(&(data.as_ptr() as usize)));

        // Requests: two frames in one buffer, one from the reference, one
        // from the codec, decode one after the other.
        let mut buffer = reference_frame(&write_call(100_000));
        for chunk in encode_frame(&write_call(100_000), config.max_frame_bytes).unwrap() {
            buffer.extend_from_slice(&chunk);
        }
        let mut server = ServerCodec::server(&config);
        for _ in 0..2 {
            let decoded = server.decode(&mut buffer).unwrap().expect("a whole frame");
            let tarpc::ClientMessage::Request(r) = decoded else {
                panic!("not a request")
            };
            let NodeRequest::Call {
                request: WireRequest::Storage(StorageRequest::WriteBucket { data, offset, .. }),
            } = r.message
            else {
                panic!("not a write")
            };
            assert_eq!((offset, data.len()), (77, 100_000));
            assert!(data.iter().all(|&b| b == 6));
        }
        assert!(buffer.is_empty());
    }

    /// The storage answer inside `answer`.
    fn read_answer(answer: &Outgoing) -> &StorageResponse {
        let Ok(NodeResponse::Call(Ok(WireResponse::Storage(r)))) = &answer.message else {
            panic!("not a storage answer")
        };
        r
    }

    #[test]
    fn a_message_over_the_frame_limit_is_refused() {
        let config = TarpcTcpConfig::default();
        let err =
            encode_frame(&write_call(config.max_frame_bytes), config.max_frame_bytes).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(
            encode_frame(
                &write_call(config.max_frame_bytes - 100),
                config.max_frame_bytes
            )
            .is_ok()
        );
    }
}
