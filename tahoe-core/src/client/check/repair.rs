//! Repairing an immutable file from its verify cap: the shares missing
//! (or crowded onto servers that hold others) are made again from k good
//! ones and placed on servers that hold none. (A mutable file is repaired
//! by publishing its newest version again, with its write cap:
//! `MutableClient::republish`.)
//!
//! The repairer downloads the file's ciphertext, verified against the
//! ciphertext hash tree its UEB vouches for; it never has the key and
//! decrypts nothing. It encodes that ciphertext again with the file's codec
//! and segmentation (both from the UEB) as it arrives, through a pipe that
//! holds a few segments (no spool: the download and the placing overlap,
//! and memory stays bounded), and keeps the new shares only if they
//! reproduce the UEB byte for byte, so a repair
//! cannot write shares that differ from the file's. Existing shares are
//! never touched: a corrupt copy stays where it is (the protocol gives a
//! client no way to delete a share) and a copy of it goes elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::CheckResults;
use crate::client::immutable::download::Downloader;
use crate::client::immutable::placement::HappySink;
use crate::client::immutable::upload::Uploader;
use crate::client::mutable::file::MutableClient;
use crate::client::secrets::ClientSecret;
use crate::client::servers::{BadShare, ServerRef, permuted};
use crate::client::source::pipe;
use crate::error::Result;
use crate::format::cap::ChkVerifierCap;
use crate::kinds::storage::ShareNum;

/// What the pipe between a repair's download and its re-encoding holds at
/// most (or one segment, when larger): a few segments.
const PIPE_BYTES: usize = 4 << 20;

/// What a repair needs besides the servers.
#[derive(Clone)]
pub struct RepairTools {
    /// Fetches the ciphertext (its codecs build the file's codec too).
    pub downloader: Downloader,
    /// The repairing client's secret: the new shares' lease and upload
    /// secrets derive from it, as an upload's do.
    pub secret: ClientSecret,
    /// Where the ciphertext is spooled (a private file, removed after).
    pub spool_dir: PathBuf,
    /// Republishes mutable files (their write caps given to the repair).
    pub mutable: Option<MutableClient>,
}

/// The shares a repair places, in order: the missing ones first, then (to
/// spread a file over more servers) shares whose every holder holds
/// another share too, as many as there are servers holding none.
pub(super) fn shares_to_place(before: &CheckResults, empty_servers: usize) -> Vec<ShareNum> {
    let n = before.count_shares_expected;
    let mut by_share: BTreeMap<ShareNum, &BTreeSet<String>> = BTreeMap::new();
    for (name, servers) in &before.sharemap {
        if let Ok(shnum) = name.parse::<ShareNum>() {
            by_share.insert(shnum, servers);
        }
    }
    let mut out: Vec<ShareNum> = (0..n)
        .filter_map(|s| ShareNum::try_from(s).ok())
        .filter(|s| !by_share.contains_key(s))
        .collect();
    // Give each share a holder of its own, greedily; the shares left
    // without one sit only on servers counted for another share.
    let mut used = BTreeSet::new();
    let mut crowded = Vec::new();
    for (shnum, holders) in &by_share {
        match holders.iter().find(|h| !used.contains(*h)) {
            Some(h) => {
                used.insert((*h).clone());
            }
            None => crowded.push(*shnum),
        }
    }
    let room = empty_servers.saturating_sub(out.len());
    out.extend(crowded.into_iter().take(room));
    out
}

/// Place `shares` of the file `cap` names on `targets` (the responding
/// servers holding none of its good shares first, as a fresh upload would
/// choose them), made from the ciphertext of the good shares on `servers`;
/// the shares the download went around (a bad block, a wrong UEB, a
/// server that did not serve what it listed).
pub(super) async fn repair(
    tools: &RepairTools,
    cap: &ChkVerifierCap,
    servers: &[ServerRef],
    targets: Vec<ServerRef>,
    shares: Vec<ShareNum>,
) -> Result<Vec<BadShare>> {
    let si = cap.storage_index;
    let (mut writer, source) = pipe(cap.size, PIPE_BYTES);
    let (ueb_tx, ueb_rx) = tokio::sync::oneshot::channel();
    let download = async {
        let r = tools
            .downloader
            .stream_ciphertext(cap, servers, &mut writer, ueb_tx)
            .await;
        match &r {
            Ok(_) => tokio::io::AsyncWriteExt::shutdown(&mut writer).await?,
            // The reader must not wait for bytes that will not come.
            Err(_) => writer.fail(),
        }
        r
    };
    let place = async move {
        let Ok(layout) = ueb_rx.await else {
            // The download failed before it had the UEB: its error says why.
            return Ok(());
        };
        let ueb = &layout.ueb;
        let codec = (tools.downloader.codecs)(&ueb.codec_name, ueb.codec_params()?)
            .map_err(|e| e.context("the file's codec"))?;
        let targets = permuted(&targets, &si);
        let sink = HappySink::for_shares(targets, shares, cap.k, cap.n, tools.secret.clone());
        Uploader::upload_ciphertext(codec, Arc::new(source), si, &layout, &sink).await
    };
    let (downloaded, placed) = tokio::join!(download, place);
    // When placing failed first, the download's failure is only its echo
    // (its pipe closed): the placing error is the one to tell.
    match (downloaded, placed) {
        (Ok(report), Ok(())) => Ok(report.bad_shares),
        (_, Err(e)) if writer.reader_gone() => Err(e.context("placing the repaired shares")),
        (Err(e), _) => Err(e.context("reading the file to repair")),
        (Ok(_), Err(e)) => Err(e.context("placing the repaired shares")),
    }
}
