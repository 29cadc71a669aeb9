//! Directories made by the real Tahoe-LAFS 1.20 library
//! (tests/data/tahoe-dirnodes.json, from scripts/gen_tahoe_dirnodes.py):
//! we read every entry as Tahoe wrote it, write the same bytes back, and,
//! building each directory afresh from its names, caps and metadata,
//! encode the same bytes Tahoe's pack_children did.

use bytes::Bytes;
use tahoe_core::format::dirnode::json::to_python_json;
use tahoe_core::format::dirnode::{ChildCap, Directory, Metadata, Node, WriteKey};
use testkit::vectors::{aes_ctr, unhex};

struct Child {
    name: String,
    rw: Option<String>,
    ro: Option<String>,
    metadata_json: String,
}

struct Case {
    name: String,
    write_key: Option<[u8; 16]>,
    mutable: bool,
    children: Vec<Child>,
    packed: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string("tests/data/tahoe-dirnodes.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["tahoe_lafs"], "1.20.0");
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: s(&c["name"]).unwrap(),
            write_key: s(&c["writekey"]).map(|k| unhex(&k).try_into().unwrap()),
            mutable: !c["deep_immutable"].as_bool().unwrap(),
            children: c["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ch| Child {
                    name: s(&ch["name"]).unwrap(),
                    rw: s(&ch["rw_uri"]),
                    ro: s(&ch["ro_uri"]),
                    metadata_json: s(&ch["metadata_json"]).unwrap(),
                })
                .collect(),
            packed: unhex(c["packed_hex"].as_str().unwrap()),
        })
        .collect()
}

fn key(c: &Case) -> Option<WriteKey> {
    c.write_key.map(|key| WriteKey {
        key,
        cipher: aes_ctr(),
    })
}

fn text(cap: &Option<ChildCap>) -> Option<String> {
    cap.as_ref().map(ChildCap::to_string)
}

#[test]
fn tahoe_dirnodes_decode_and_write_back_the_same_bytes() {
    let cases = cases();
    assert!(cases.len() >= 16);
    for c in &cases {
        let dir = Directory::parse(Bytes::from(c.packed.clone()), c.mutable, key(c)).unwrap();
        assert!(dir.skipped().is_empty(), "{}: {:?}", c.name, dir.skipped());
        assert_eq!(dir.len(), c.children.len(), "{}", c.name);
        for (want, (name, entry)) in c.children.iter().zip(dir.entries()) {
            assert_eq!(name, want.name, "{}", c.name);
            let node = dir.node_of(name, entry).unwrap();
            assert_eq!(text(&node.read), want.ro, "{} {name}", c.name);
            assert_eq!(text(&node.write), want.rw, "{} {name}", c.name);
            let md: Metadata = serde_json::from_str(&want.metadata_json).unwrap();
            assert_eq!(entry.metadata(), &md, "{} {name}", c.name);
        }
        assert_eq!(dir.pack().unwrap(), c.packed, "{}", c.name);
        // Read-only holders see the names, read caps and metadata, never
        // a write cap, and still report nothing skipped.
        if c.mutable {
            let ro = Directory::parse(Bytes::from(c.packed.clone()), true, None).unwrap();
            assert!(ro.skipped().is_empty());
            for (name, entry) in ro.entries() {
                let node = ro.node_of(name, entry).unwrap();
                assert!(node.write.is_none(), "{} {name}", c.name);
                assert_eq!(
                    text(&node.read),
                    c.children.iter().find(|w| w.name == name).unwrap().ro
                );
            }
        }
    }
}

#[test]
fn we_encode_the_bytes_tahoe_encodes() {
    let mut compared = 0;
    for c in cases() {
        // Python's integers have no size limit; ours are 64-bit, so
        // metadata holding bigger ones cannot be re-encoded from values
        // (entries read from disk keep their bytes, tested above).
        let exact = c.children.iter().all(|ch| {
            let md: Metadata = serde_json::from_str(&ch.metadata_json).unwrap();
            to_python_json(&md) == ch.metadata_json.as_bytes()
        });
        if !exact {
            assert_eq!(
                c.name, "metadata-ints",
                "metadata of {} did not re-encode",
                c.name
            );
            continue;
        }
        let mut dir = Directory::new(c.mutable, key(&c));
        for ch in &c.children {
            let parse =
                |s: &Option<String>| s.as_deref().map(|s| ChildCap::parse(s).unwrap().unwrap());
            let node = Node {
                write: parse(&ch.rw),
                read: parse(&ch.ro),
            };
            let md: Metadata = serde_json::from_str(&ch.metadata_json).unwrap();
            dir.insert(&ch.name, node, md).unwrap();
        }
        assert_eq!(dir.pack().unwrap(), c.packed, "{}", c.name);
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} cases compared");
}
