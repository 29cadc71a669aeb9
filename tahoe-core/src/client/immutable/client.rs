//! Immutable files on a set of servers: upload (a LIT cap when the file
//! fits in one) and download, whole or a range, or into memory.

use std::ops::Range;
use std::sync::Arc;

use tokio::io::AsyncWrite;

use crate::client::immutable::download::{DownloadReport, Downloader};
use crate::client::immutable::placement::HappySink;
use crate::client::immutable::sink::NullSink;
use crate::client::immutable::upload::{PrecomputedKey, Uploader};
use crate::client::secrets::ClientSecret;
use crate::client::servers::ServerRef;
use crate::client::source::Source;
use crate::error::{Error, Result};
use crate::format::cap::{Cap, LIT_THRESHOLD};

/// Uploads and downloads immutable files over `servers`.
#[derive(Clone)]
pub struct ImmutableClient {
    /// The storage servers.
    pub servers: Vec<ServerRef>,
    /// How files are encoded and encrypted (its codec's k and n are the
    /// upload's).
    pub uploader: Uploader,
    /// How files are read back.
    pub downloader: Downloader,
    /// Distinct servers an upload must reach.
    pub happy: u16,
    /// This client's secret (lease and upload secrets).
    pub secret: ClientSecret,
}

impl ImmutableClient {
    /// Upload `source`; its cap (LIT for files of at most 55 bytes, which
    /// touch no server).
    pub async fn put(&self, source: Arc<dyn Source>) -> Result<Cap> {
        self.put_with(source, None).await
    }

    /// [`Self::put`] with a key computed as the bytes went by (see
    /// [`Uploader::upload_with`]).
    pub async fn put_with(
        &self,
        source: Arc<dyn Source>,
        key: Option<PrecomputedKey>,
    ) -> Result<Cap> {
        let params = self.uploader.codec.params();
        let (k, n) = (params.k() as u16, params.n() as u16);
        if source.size() <= LIT_THRESHOLD {
            return self.uploader.upload(source, &NullSink { n }).await;
        }
        let sink = HappySink::new(self.servers.clone(), k, self.happy, n, self.secret.clone());
        self.uploader.upload_with(source, key, &sink).await
    }

    /// Write bytes `range` of the file `cap` (CHK or LIT) to `out`.
    pub async fn get(
        &self,
        cap: &Cap,
        range: Range<u64>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<DownloadReport> {
        use tokio::io::AsyncWriteExt;
        match cap {
            Cap::Chk(c) => self.downloader.download(c, &self.servers, range, out).await,
            Cap::Lit(l) => {
                let len = l.data.len() as u64;
                let (start, end) = (range.start.min(len), range.end.min(len));
                out.write_all(&l.data[start as usize..end.max(start) as usize])
                    .await
                    .map_err(|e| Error::from(e).context("writing the file out"))?;
                Ok(DownloadReport::default())
            }
            other => Err(Error::invalid_input(format!(
                "an immutable file's cap (URI:CHK: or URI:LIT:) was expected, not {} cap",
                other.a_kind()
            ))),
        }
    }

    /// The whole file `cap` in memory, refused when larger than `limit`.
    pub async fn read_all(&self, cap: &Cap, limit: u64) -> Result<Vec<u8>> {
        if let Cap::Chk(c) = cap
            && c.size > limit
        {
            return Err(Error::invalid_input(format!(
                "the file has {} bytes, more than the {limit} read into memory",
                c.size
            )));
        }
        let mut out = Vec::new();
        self.get(cap, 0..u64::MAX, &mut out).await?;
        Ok(out)
    }
}
