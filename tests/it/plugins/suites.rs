//! What the conformance suites (`tahoe_core::testing`) report: a plugin
//! that breaks one clause of its kind's contract fails that clause, by
//! name, and no other.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::Result;
use tahoe_core::kinds::cipher::Cipher;
use tahoe_core::kinds::codec::{Block, Codec, CodecParams};
use tahoe_core::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector,
};
use tahoe_core::testing::{cipher, codec, storage};
use testkit::rt;

/// What a suite run panicked with; it must have panicked.
fn failure(suite: impl FnOnce()) -> String {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(suite))
        .expect_err("the suite passed a broken plugin");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

/// `message` names clause `broken` of `clauses` as failed, and no other.
fn names_only(message: &str, broken: &str, clauses: impl IntoIterator<Item = &'static str>) {
    let mut named = 0;
    for name in clauses {
        let said = message.contains(&format!("clause \"{name}\" failed"));
        assert_eq!(said, name == broken, "{name:?} in {message}");
        named += usize::from(said);
    }
    assert_eq!(named, 1, "{broken:?} is not a clause: {message}");
}

/// AES-CTR, but from offset 1000 on (short of the end of the range) the
/// keystream is the next byte's.
struct SeeksWrong(tahoe_cipher_aes_ctr::AesCtr);

impl Cipher for SeeksWrong {
    fn name(&self) -> &str {
        "seeks-wrong"
    }
    fn key_len(&self) -> usize {
        self.0.key_len()
    }
    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
        let off = if (1000..u64::MAX / 2).contains(&offset) {
            offset + 1
        } else {
            offset
        };
        self.0.apply_keystream(key, off, data)
    }
}

#[test]
fn a_cipher_that_seeks_wrong_fails_the_seek_clause_alone() {
    let message = failure(|| cipher::run(&SeeksWrong(tahoe_cipher_aes_ctr::AesCtr::aes128())));
    assert!(
        message.starts_with("cipher conformance: clause"),
        "{message}"
    );
    names_only(
        &message,
        "the keystream at any offset is the straight stream's",
        cipher::CLAUSES.iter().map(|(name, _)| *name),
    );
    assert!(message.contains("offset 1000"), "{message}");
}

/// crs, but an empty segment encodes to n empty blocks.
struct TakesEmpty(tahoe_codec_crs::Crs);

impl Codec for TakesEmpty {
    fn name(&self) -> &str {
        "takes-empty"
    }
    fn params(&self) -> CodecParams {
        self.0.params()
    }
    fn block_len(&self, data_len: usize) -> usize {
        self.0.block_len(data_len)
    }
    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        if data.is_empty() {
            return Ok(vec![Vec::new(); self.params().n()]);
        }
        self.0.encode(data)
    }
    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>> {
        self.0.decode(blocks, data_len)
    }
}

#[test]
fn a_codec_that_takes_an_empty_segment_fails_that_clause_alone() {
    let params = CodecParams::new(3, 5).unwrap();
    let crs = tahoe_codec_crs::Crs::new(params, tahoe_gf256::Kernel::Portable).unwrap();
    let message = failure(|| codec::check_params(&TakesEmpty(crs)));
    let names = std::iter::once(codec::ENCODES)
        .chain(codec::SAMPLE_CLAUSES.iter().map(|(name, _)| *name))
        .chain(codec::CLAUSES.iter().map(|(name, _)| *name));
    names_only(&message, "an empty segment is refused", names);
    assert!(message.contains("takes-empty 3-of-5"), "{message}");
}

/// The memory backend, but leases come back newest first.
struct LeasesReversed(tahoe_storage_memory::MemoryBackend);

#[async_trait]
impl StorageBackend for LeasesReversed {
    fn name(&self) -> &str {
        "leases-reversed"
    }
    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        self.0.create(si, shnum, size).await
    }
    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.0.read(si, shnum, kind, offset, len).await
    }
    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        self.0.list(si).await
    }
    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        self.0.delete(si, shnum).await
    }
    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        self.0.remaining_capacity().await
    }
    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        self.0
            .test_and_write(si, shnum, tests, writes, new_length)
            .await
    }
    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        self.0.add_lease(si, lease).await
    }
    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let mut leases = self.0.leases(si).await?;
        leases.reverse();
        Ok(leases)
    }
}

#[test]
fn a_backend_that_reorders_leases_fails_the_lease_clause_alone() {
    let message = failure(|| {
        rt().block_on(storage::run(|| async {
            Ok(
                Arc::new(LeasesReversed(tahoe_storage_memory::MemoryBackend::new(
                    None,
                ))) as Arc<dyn StorageBackend>,
            )
        }))
    });
    names_only(
        &message,
        "leases are added and renewed to the later expiry",
        storage::CLAUSES.iter().map(|(name, _)| *name),
    );
}
