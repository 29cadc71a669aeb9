//! What S3 keeps about an object, in its directory entry's metadata.
//!
//! Under the entry's `"s3"` metadata key: `etag` (hex MD5 of the content,
//! or S3's multipart form `HEX-N`), the `Content-*` and `Cache-Control`
//! headers the object was stored with, `meta`, the user metadata
//! (`x-amz-meta-*`), and `for`, a hash of the cap they describe. Other
//! front ends keep the entry's other metadata (`mtime`, Tahoe's `tahoe`
//! key) as they always have, and some relink a name keeping the old
//! metadata: an `"s3"` block whose `for` is not the entry's cap now is
//! another file's and is ignored. A file without a block of its own gets
//! an ETag made from its cap (and, for a mutable file, its version: see
//! [`ObjectMeta::etag_of`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tahoe_core::format::dirnode::{Metadata, Node};

/// The entry metadata key S3's fields live under.
pub const KEY: &str = "s3";

/// An object's S3 fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectMeta {
    /// The ETag, without quotes.
    pub etag: String,
    /// `Content-Type`.
    #[serde(rename = "content-type", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    #[serde(rename = "content-encoding", skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    #[serde(
        rename = "content-disposition",
        skip_serializing_if = "Option::is_none"
    )]
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    #[serde(rename = "content-language", skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control`.
    #[serde(rename = "cache-control", skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-NAME: VALUE`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Which file these fields describe: [`cap_hash`] of its cap.
    #[serde(rename = "for", skip_serializing_if = "String::is_empty")]
    pub for_cap: String,
}

impl ObjectMeta {
    /// The fields of an entry whose metadata is `md`, which links `node`
    /// (a mutable file at `version`).
    pub fn of(md: Option<&Metadata>, node: Option<&Node>, version: Option<u64>) -> ObjectMeta {
        let mine = cap_hash(node);
        let stored: Option<ObjectMeta> = md
            .and_then(|md| md.get(KEY))
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        match stored {
            // A mutable file changes under its cap: only its version
            // tells its content apart.
            Some(m) if m.for_cap == mine && !m.etag.is_empty() && !is_mutable(node) => m,
            _ => ObjectMeta {
                etag: ObjectMeta::etag_of(node, version),
                ..ObjectMeta::default()
            },
        }
    }

    /// The ETag of a file S3 did not store: a hash of its cap (and of a
    /// mutable file's version), in the multipart form (`HEX-1`) so that
    /// clients that check ETags as MD5s of the content know it is not
    /// one. It changes when the file does, and tells nothing of the cap.
    pub fn etag_of(node: Option<&Node>, version: Option<u64>) -> String {
        use s3s::crypto::Checksum as _;
        let cap = node.and_then(|n| n.known()).map(|c| c.to_string());
        let text = format!("{}#{}", cap.unwrap_or_default(), version.unwrap_or(0));
        let h = s3s::crypto::Sha256::checksum(text.as_bytes());
        format!("{}-1", hex(&h[..16]))
    }

    /// These fields, for the file `node`.
    pub fn describing(mut self, node: &Node) -> ObjectMeta {
        self.for_cap = cap_hash(Some(node));
        self
    }

    /// These fields as entry metadata, to be merged into the entry's.
    pub fn to_metadata(&self) -> Metadata {
        let mut md = Metadata::new();
        if let Ok(v) = serde_json::to_value(self) {
            md.insert(KEY.into(), v);
        }
        md
    }
}

/// A hash of `node`'s cap (hex, 16 bytes): names the file without
/// telling its cap.
pub fn cap_hash(node: Option<&Node>) -> String {
    use s3s::crypto::Checksum as _;
    let cap = node.and_then(|n| n.known()).map(|c| c.to_string());
    let h = s3s::crypto::Sha256::checksum(format!("s3-for:{}", cap.unwrap_or_default()).as_bytes());
    hex(&h[..16])
}

/// Whether `node` is a mutable file.
pub fn is_mutable(node: Option<&Node>) -> bool {
    use tahoe_core::format::cap::Cap;
    matches!(
        node.and_then(|n| n.known()),
        Some(Cap::SskWrite(_) | Cap::SskRead(_))
    )
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_entry_metadata() {
        let mut m = ObjectMeta {
            etag: "0123456789abcdef0123456789abcdef".into(),
            content_type: Some("text/plain".into()),
            ..ObjectMeta::default()
        };
        m.meta.insert("colour".into(), "blue".into());
        let a = Node::from_cap("URI:LIT:mfrgg".parse().unwrap());
        let b = Node::from_cap("URI:LIT:mfrgi".parse().unwrap());
        let m = m.describing(&a);
        let md = m.to_metadata();
        assert_eq!(md["s3"]["content-type"], "text/plain");
        assert_eq!(ObjectMeta::of(Some(&md), Some(&a), None), m);
        // Another file linked under the name with the old metadata: the
        // block describes the old one and is ignored.
        let other = ObjectMeta::of(Some(&md), Some(&b), None);
        assert_ne!(other.etag, m.etag);
        assert_eq!(other.content_type, None);
    }

    #[test]
    fn a_file_s3_did_not_store_gets_an_etag_that_is_not_an_md5() {
        let e = ObjectMeta::of(Some(&Metadata::new()), None, None).etag;
        assert!(e.ends_with("-1") && e.len() == 34, "{e}");
        // A mutable file's ETag follows its version.
        assert_ne!(
            ObjectMeta::etag_of(None, Some(1)),
            ObjectMeta::etag_of(None, Some(2))
        );
    }
}
