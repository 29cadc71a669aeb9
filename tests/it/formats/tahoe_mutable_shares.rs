//! Our mutable shares are the bytes Tahoe-LAFS 1.20 writes, and we read
//! the shares Tahoe writes.
//!
//! `tests/data/tahoe-mutable-shares.json` was made by the real Tahoe-LAFS
//! 1.20 library (`scripts/gen_tahoe_mutable_shares.py`): SDMF and MDMF
//! files (empty, small, several segments, overwritten to sequence number
//! 2), every share as Tahoe's client wrote it into a slot. For each case:
//! - the caps follow from the key;
//! - the shares, stored on our storage servers, read back as the data;
//! - our encoder, given the same key, data, sequence number and salts
//!   (read out of Tahoe's shares), produces the same bytes. PSS signatures
//!   are randomized, so our signer checks that it is asked to sign exactly
//!   the prefix Tahoe signed (Tahoe's signature verifies over it) and hands
//!   back Tahoe's signature; every other byte is ours.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use tahoe_core::client::mutable::publish::WriteKeys;
use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::client::secrets::write_enabler;
use tahoe_core::format::cap::Cap;
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::format::ssk::encode::{EncodedSegment, encode_segment, sign, whole_shares};
use tahoe_core::format::ssk::layout::{Geometry, SALT_LEN, ShareHead};
use tahoe_core::kinds::codec::CodecParams;
use tahoe_core::kinds::storage::{TestVector, WriteVector};
use tahoe_core::protocol::{SlotSecrets, SlotWrite, StorageService};
use tahoe_core::testing::pseudo_random_bytes;
use testkit::{MemGrid, rt};

struct Case {
    name: String,
    format: MutableFormat,
    key: SigningKey,
    k: u16,
    n: u16,
    seqnum: u64,
    data: Vec<u8>,
    caps: [String; 3],
    shares: BTreeMap<u8, Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string("tests/data/tahoe-mutable-shares.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let num = |k: &str| c[k].as_u64().unwrap();
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            Case {
                name: s("name"),
                format: MutableFormat::parse(&s("format")).unwrap(),
                key: SigningKey::from_pem(&s("key_pem")).unwrap(),
                k: num("k") as u16,
                n: num("n") as u16,
                seqnum: num("seqnum"),
                data: pseudo_random_bytes(num("data_seed"), num("data_length") as usize),
                caps: [s("writecap"), s("readcap"), s("verifycap")],
                shares: c["shares"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.parse().unwrap(), b64.decode(v.as_str().unwrap()).unwrap()))
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn caps_follow_from_the_key() {
    let cases = cases();
    assert!(cases.len() >= 8);
    for c in &cases {
        let w = c.key.write_cap(c.format);
        assert_eq!(w.to_string(), c.caps[0], "{}", c.name);
        assert_eq!(w.read_cap().to_string(), c.caps[1], "{}", c.name);
        assert_eq!(w.read_cap().verifier().to_string(), c.caps[2], "{}", c.name);
    }
}

#[test]
fn we_read_the_shares_tahoe_writes() {
    let rt = rt();
    for c in cases() {
        rt.block_on(async {
            let grid = MemGrid::new(usize::from(c.n)).await;
            let Cap::SskWrite(cap) = c.caps[0].parse().unwrap() else {
                panic!()
            };
            let si = cap.storage_index();
            // Store share i on server i, as a writer holding the write cap.
            for (i, (&shnum, share)) in c.shares.iter().enumerate() {
                let id = format!("server-{i}");
                let secrets = SlotSecrets {
                    write_enabler: write_enabler(&cap.write_key, &id),
                    renew_secret: [1; 32],
                    cancel_secret: [2; 32],
                };
                let w = SlotWrite {
                    tests: vec![TestVector::absent()],
                    writes: vec![WriteVector {
                        offset: 0,
                        data: Bytes::from(share.clone()),
                    }],
                    new_length: None,
                };
                let (ok, _) = grid.servers[i]
                    .slot_testv_and_readv_and_writev(
                        si,
                        secrets,
                        BTreeMap::from([(shnum, w)]),
                        vec![],
                    )
                    .await
                    .unwrap();
                assert!(ok);
            }
            let client = grid.mutable_client(c.k, c.n, 128 * 1024);
            for cap_text in &c.caps[..2] {
                let cap: Cap = cap_text.parse().unwrap();
                let mut out = Vec::new();
                let report = client
                    .read(&cap.mutable_read_cap().unwrap(), 0..u64::MAX, &mut out)
                    .await
                    .unwrap();
                assert_eq!(out, c.data, "{}", c.name);
                assert_eq!(report.prefix.seqnum, c.seqnum);
                assert!(report.bad_shares.is_empty(), "{:?}", report.bad_shares);
            }
            // A ranged read of the middle.
            if c.data.len() > 10 {
                let mut out = Vec::new();
                let len = c.data.len() as u64;
                client
                    .read(&cap.read_cap(), len / 3..len / 3 + 7, &mut out)
                    .await
                    .unwrap();
                assert_eq!(out, c.data[len as usize / 3..len as usize / 3 + 7]);
            }
            // And the write cap opens the signing key stored in the shares:
            // an overwrite through it works and reads back.
            client
                .overwrite(
                    &cap,
                    Arc::new(tahoe_core::client::source::BytesSource(Bytes::from_static(
                        b"new contents",
                    ))),
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            let r = client
                .read(&cap.read_cap(), 0..u64::MAX, &mut out)
                .await
                .unwrap();
            assert_eq!(out, b"new contents");
            assert_eq!(r.prefix.seqnum, c.seqnum + 1);
        });
    }
}

#[test]
fn our_shares_are_the_bytes_tahoe_writes() {
    let grid = rt().block_on(MemGrid::new(1));
    let ctx = tahoe_core::plugin::registry::PluginContext::empty(
        tahoe_core::plugin::registry::PluginKind::Cipher,
        "aes-ctr",
        std::path::Path::new("."),
    );
    let cipher = grid.registry.cipher("aes-ctr", &ctx).unwrap();
    for c in cases() {
        let theirs0 = &c.shares[&0];
        let head = ShareHead::parse(theirs0).unwrap();
        let p = &head.prefix;
        assert_eq!(p.seqnum, c.seqnum, "{}", c.name);
        let geo = Geometry::new(
            c.format,
            u64::from(c.k),
            p.segment_size,
            c.data.len() as u64,
        );
        assert_eq!(p.geometry(), geo);
        let codec = grid.codec("crs", c.k, c.n);
        assert_eq!(codec.params(), CodecParams::new(c.k, c.n).unwrap());
        let keys = WriteKeys::new(c.key.clone(), c.format, cipher.as_ref()).unwrap();
        // The salts Tahoe drew: SDMF's IV, MDMF's before each block.
        let salt_of = |seg: u64| -> [u8; SALT_LEN] {
            let mut s = [0u8; SALT_LEN];
            match c.format {
                MutableFormat::Sdmf => s = p.iv.unwrap(),
                MutableFormat::Mdmf => {
                    let at = (head.offsets.share_data.start + geo.block_offset(seg)) as usize;
                    s.copy_from_slice(&theirs0[at..at + SALT_LEN]);
                }
            }
            s
        };
        let segments: Vec<EncodedSegment> = (0..geo.segments)
            .map(|seg| {
                let start = (seg * geo.segment_size) as usize;
                let plain = &c.data[start..start + geo.segment_len(seg) as usize];
                encode_segment(
                    &geo,
                    codec.as_ref(),
                    cipher.as_ref(),
                    &keys.read_key,
                    seg,
                    salt_of(seg),
                    plain,
                )
                .unwrap()
            })
            .collect();
        let mut leaves = vec![Vec::new(); usize::from(c.n)];
        for seg in &segments {
            for (i, l) in seg.leaves.iter().enumerate() {
                leaves[i].push(*l);
            }
        }
        let sig_range = head.offsets.signature.clone();
        let tahoe_sig = theirs0[sig_range.start as usize..sig_range.end as usize].to_vec();
        let vk = c.key.verifying_key().clone();
        let signer = |msg: &[u8]| -> tahoe_core::Result<Vec<u8>> {
            // Tahoe's signature must verify over exactly what we sign.
            vk.verify(msg, &tahoe_sig).unwrap();
            Ok(tahoe_sig.clone())
        };
        let iv = (c.format == MutableFormat::Sdmf).then(|| salt_of(0));
        let version = sign(
            &geo,
            c.seqnum,
            c.n as u8,
            iv,
            &leaves,
            c.key.verifying_key().der().to_vec(),
            keys.enc_privkey.clone(),
            &signer,
        )
        .unwrap();
        let ours = whole_shares(&version, &segments);
        for (shnum, theirs) in &c.shares {
            let mine = &ours[usize::from(*shnum)];
            assert_eq!(mine.len(), theirs.len(), "{} share {shnum}: length", c.name);
            if let Some(i) = mine.iter().zip(theirs).position(|(a, b)| a != b) {
                panic!("{} share {shnum} differs first at byte {i}", c.name);
            }
        }
        // And our own signature of that prefix verifies as Tahoe's does.
        let ours_sig = c.key.sign(&version.prefix.signed_bytes()).unwrap();
        vk.verify(&version.prefix.signed_bytes(), &ours_sig)
            .unwrap();
    }
}
