//! Verifying one share of a CHK file whole, with the verify cap only: no
//! key is derived and nothing is decrypted or decoded. Its URI extension
//! block must hash to the cap's; its ciphertext hash tree must be
//! consistent with the UEB's root; its block hash tree must reach, through
//! its share hash chain, the UEB's share root; and every block must hash to
//! its leaf. What Tahoe-LAFS's verifier checks, share by share.

use bytes::Bytes;

use super::download::{Candidate, Context, crypttext_tree, fetch_ueb, open_share, read_exact};
use crate::client::servers::ServerRef;
use crate::error::{Error, Result};
use crate::format::cap::ChkVerifierCap;
use crate::format::chk::plan::SharePlan;
use crate::format::hash::{Hash, block_hashes};
use crate::kinds::codec::CodecProvider;
use crate::kinds::storage::ShareNum;

/// How many bytes of blocks one read fetches (at least one block, and up to
/// three more to fill the hasher's lanes): what one share's verification
/// holds in memory, whatever the file's size.
const READ_BYTES: u64 = 1 << 20;

/// Verify share `shnum` (of `size` bytes, as its server listed it) that
/// `server` holds of the file `cap` names. `Corrupt` says what failed; any
/// other error means the server did not answer as asked.
pub async fn verify_share(
    codecs: &CodecProvider,
    cap: &ChkVerifierCap,
    server: &ServerRef,
    shnum: ShareNum,
    size: u64,
) -> Result<()> {
    let si = cap.storage_index;
    let cand = Candidate {
        shnum,
        server: server.clone(),
        size,
        head: None,
    };
    let (ueb, layout) = fetch_ueb(&cand, si, cap).await?;
    let codec =
        codecs(&ueb.codec_name, ueb.codec_params()?).map_err(|e| e.context("the file's codec"))?;
    let plan = SharePlan::from_segmentation(ueb.segmentation(), codec.as_ref())?;
    let crypttext_tree = crypttext_tree(&cand, si, &layout, &plan, &ueb).await?;
    let ctx = Context {
        si,
        ueb,
        plan,
        codec,
        crypttext_tree,
    };
    let share = open_share(&ctx, &cand).await?;
    let segments = ctx.plan.seg.num_segments;
    let leaves = share.block_tree.len() / 2;
    let mut seg = 0;
    while seg < segments {
        // About READ_BYTES of blocks, in whole groups of the hasher's
        // lanes: a group of three takes as long as one of four.
        let mut lens = vec![ctx.plan.block_len(seg)];
        while seg + (lens.len() as u64) < segments
            && (lens.iter().sum::<u64>() + ctx.plan.block_size <= READ_BYTES
                || !lens.len().is_multiple_of(tahoe_sha256x::LANES))
        {
            lens.push(ctx.plan.block_len(seg + lens.len() as u64));
        }
        let end = seg + lens.len() as u64;
        let offset = share.layout.data + seg * ctx.plan.block_size;
        let bytes = read_exact(&cand, si, offset, lens.iter().sum()).await?;
        let want = share.block_tree[leaves + seg as usize..leaves + end as usize].to_vec();
        check_blocks(bytes, lens, want, seg).await?;
        seg = end;
    }
    Ok(())
}

/// Check the blocks laid end to end in `bytes` (of `lens`), the first
/// being block `first`, against their leaves, on a blocking thread.
async fn check_blocks(bytes: Bytes, lens: Vec<u64>, want: Vec<Hash>, first: u64) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut blocks = Vec::with_capacity(lens.len());
        let mut at = 0usize;
        for len in &lens {
            blocks.push(&bytes[at..at + *len as usize]);
            at += *len as usize;
        }
        let got = block_hashes(&blocks);
        match got.iter().zip(&want).position(|(g, w)| g != w) {
            Some(i) => Err(Error::corrupt(format!(
                "block {} fails its hash",
                first + i as u64
            ))),
            None => Ok(()),
        }
    })
    .await
    .map_err(|e| Error::internal(format!("block check task failed: {e}")))?
}
