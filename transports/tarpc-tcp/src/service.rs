//! The tarpc service that carries `tahoe_core::protocol`: its definition,
//! the dispatch of its calls to a node's services, and the vetting and
//! coding of its frames. The server loop is in `server.rs`, the client in
//! `client.rs`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, Announcement, AnnouncementBatch, GridSecret, QueenService,
    Secret, ServerVersion, SlotSecrets, SlotWrite, StorageService,
};
use tahoe_core::storage::{ShareNum, StorageIndex};
use tahoe_core::transport::{LocalServices, service_not_offered};
use tahoe_core::{Error, Result};
use tarpc::context::Context;
use tarpc::tokio_serde::formats::Bincode;
use tokio_util::codec::LengthDelimitedCodec;

use crate::TarpcTcpConfig;

#[tarpc::service]
pub(crate) trait Node {
    async fn version() -> Result<ServerVersion, Error>;
    async fn allocate_buckets(req: AllocateRequest) -> Result<AllocateResponse, Error>;
    async fn write_bucket(
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<(), Error>;
    async fn close_bucket(si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<(), Error>;
    async fn abort_bucket(si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<(), Error>;
    async fn list_buckets(si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>, Error>;
    async fn read_bucket(
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, Error>;
    async fn add_lease(si: StorageIndex, renew: Secret, cancel: Secret) -> Result<(), Error>;
    async fn advise_corrupt_share(
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<(), Error>;
    async fn slot_readv(
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>, Error>;
    async fn slot_testv_and_readv_and_writev(
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>), Error>;
    async fn announce(grid: GridSecret, a: Announcement) -> Result<(), Error>;
    async fn poll_announcements(
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch, Error>;
}

/// The server side: dispatches to the node's local services.
#[derive(Clone)]
pub(crate) struct NodeServer {
    pub(crate) services: LocalServices,
}

impl NodeServer {
    fn storage(&self) -> Result<&Arc<dyn StorageService>> {
        self.services
            .storage
            .as_ref()
            .ok_or_else(|| service_not_offered("storage"))
    }
    fn queen(&self) -> Result<&Arc<dyn QueenService>> {
        self.services
            .queen
            .as_ref()
            .ok_or_else(|| service_not_offered("queen"))
    }
}

impl Node for NodeServer {
    async fn version(self, _: Context) -> Result<ServerVersion> {
        self.storage()?.version().await
    }
    async fn allocate_buckets(self, _: Context, req: AllocateRequest) -> Result<AllocateResponse> {
        self.storage()?.allocate_buckets(req).await
    }
    async fn write_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        self.storage()?
            .write_bucket(si, shnum, secret, offset, data)
            .await
    }
    async fn close_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
    ) -> Result<()> {
        self.storage()?.close_bucket(si, shnum, secret).await
    }
    async fn abort_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
    ) -> Result<()> {
        self.storage()?.abort_bucket(si, shnum, secret).await
    }
    async fn list_buckets(self, _: Context, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        self.storage()?.list_buckets(si).await
    }
    async fn read_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.storage()?.read_bucket(si, shnum, offset, len).await
    }
    async fn add_lease(
        self,
        _: Context,
        si: StorageIndex,
        renew: Secret,
        cancel: Secret,
    ) -> Result<()> {
        self.storage()?.add_lease(si, renew, cancel).await
    }
    async fn advise_corrupt_share(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        self.storage()?
            .advise_corrupt_share(si, shnum, reason)
            .await
    }
    async fn slot_readv(
        self,
        _: Context,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        self.storage()?.slot_readv(si, shnums, ranges).await
    }
    async fn slot_testv_and_readv_and_writev(
        self,
        _: Context,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        self.storage()?
            .slot_testv_and_readv_and_writev(si, secrets, writes, read)
            .await
    }
    async fn announce(self, _: Context, grid: GridSecret, a: Announcement) -> Result<()> {
        self.queen()?.announce(grid, a).await
    }
    async fn poll_announcements(
        self,
        _: Context,
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        self.queen()?
            .poll_announcements(grid, cursor, wait_ms)
            .await
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
            message: NodeRequest::Version {},
        });
        let frame = Pin::new(&mut codec).serialize(&request).expect("serialize");
        assert!(decode_request_frame(&frame));
    }
}
