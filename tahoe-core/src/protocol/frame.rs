//! Share data decoded without a copy, as slices of the frame that carried
//! it, and encoded without one, beside the frame rather than inside it.
//!
//! A transport that receives a call or an answer as one buffer (a frame)
//! decodes it inside [`decode_within`]; the fields that carry share data
//! (marked `#[serde(with = ...)]` with the modules below) then become
//! [`Bytes`] slices of that buffer instead of fresh copies. Decoded any
//! other way (another transport, another format, outside
//! [`decode_within`]), the same fields are copied as usual: the wire
//! format is exactly the one plain `Bytes` fields have, and only where
//! the bytes land differs.
//!
//! A slice keeps alive the whole buffer its frame was read into, which a
//! transport may have made larger than the frame. So only data of at least
//! [`MIN_SLICE`] bytes is sliced, where the copy saved is worth it and the
//! data is most of its frame: blocks on their way to a backend or a
//! decoder. Smaller fields (checkstrings, share heads a client may keep in
//! a cache) are copied, and never hold a large buffer.
//!
//! The other way, a transport encodes a message inside [`encode_beside`]:
//! the marked fields of at least [`MIN_SLICE`] bytes are then not copied
//! into the frame but handed back as chunks of their own between the
//! frame's other bytes, for the transport to write one after the other
//! (TLS copies them once, as it encrypts). The chunks, end to end, are
//! byte for byte the frame a plain encoding makes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use ::bytes::{Bytes, BytesMut};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::kinds::storage::{ShareNum, WriteVector};

thread_local! {
    /// The frame being decoded on this thread, if any.
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
    /// The frame being encoded on this thread by [`encode_beside`], if any.
    static SPLICING: RefCell<Option<Splicing>> = const { RefCell::new(None) };
}

/// A frame being encoded: the chunks made so far, and the bytes written
/// since the last one.
struct Splicing {
    chunks: Vec<Bytes>,
    current: BytesMut,
}

/// Clears the frame when decoding ends, even by a panic.
struct Reset(Option<Bytes>);

impl Drop for Reset {
    fn drop(&mut self) {
        let previous = self.0.take();
        FRAME.with(|f| *f.borrow_mut() = previous);
    }
}

/// Run `decode` over `frame`, the marked fields it decodes becoming
/// slices of `frame` rather than copies.
pub fn decode_within<T>(frame: &Bytes, decode: impl FnOnce(&[u8]) -> T) -> T {
    let previous = FRAME.with(|f| f.borrow_mut().replace(frame.clone()));
    let _reset = Reset(previous);
    decode(frame)
}

/// The smallest field decoded as a slice of its frame.
pub const MIN_SLICE: usize = 16 << 10;

/// `data` as a slice of the frame being decoded when it lies within it
/// and is at least [`MIN_SLICE`] bytes, else a copy.
fn from_frame(data: &[u8]) -> Bytes {
    if data.len() < MIN_SLICE {
        return Bytes::copy_from_slice(data);
    }
    FRAME.with(|f| {
        let frame = f.borrow();
        match frame.as_ref() {
            Some(frame) if within(frame, data) => frame.slice_ref(data),
            _ => Bytes::copy_from_slice(data),
        }
    })
}

/// Whether `part` lies inside `whole`'s memory.
fn within(whole: &[u8], part: &[u8]) -> bool {
    let (start, end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    let p = part.as_ptr() as usize;
    !part.is_empty() && p >= start && p + part.len() <= end
}

/// Puts back the frame [`encode_beside`] found being encoded when it
/// returns, even by a panic.
struct EndSplicing(Option<Splicing>);

impl Drop for EndSplicing {
    fn drop(&mut self) {
        let previous = self.0.take();
        SPLICING.with(|s| *s.borrow_mut() = previous);
    }
}

/// Where [`encode_beside`]'s serializer writes: the frame's current
/// chunk. Writing to it outside [`encode_beside`] fails.
pub struct SpliceWriter(());

impl std::io::Write for SpliceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SPLICING.with(|s| match s.borrow_mut().as_mut() {
            Some(s) => {
                s.current.extend_from_slice(buf);
                Ok(buf.len())
            }
            None => Err(std::io::Error::other(
                "a SpliceWriter outside encode_beside",
            )),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encode a frame that starts with `head` (a length, say) by running
/// `serialize` over a [`SpliceWriter`]; the frame's chunks, in order. The
/// marked fields of at least [`MIN_SLICE`] bytes become chunks of their
/// own, shared with the message rather than copied.
///
/// Contract: `serialize` must write with bincode's default options (or
/// any format that writes a byte string as its length as a `u64`, then
/// its bytes, as those do): within it, a marked field writes its length
/// with `serialize_u64` and leaves its bytes to the chunk beside.
pub fn encode_beside<E>(
    head: BytesMut,
    serialize: impl FnOnce(SpliceWriter) -> Result<(), E>,
) -> Result<Vec<Bytes>, E> {
    let start = Splicing {
        chunks: Vec::new(),
        current: head,
    };
    let end = EndSplicing(SPLICING.with(|s| s.borrow_mut().replace(start)));
    let result = serialize(SpliceWriter(()));
    let made = SPLICING.with(|s| s.borrow_mut().take());
    drop(end);
    result?;
    let Splicing {
        mut chunks,
        current,
    } = made.expect("the frame being encoded is this call's");
    if !current.is_empty() {
        chunks.push(current.freeze());
    }
    Ok(chunks)
}

/// `data` serialized as `Bytes` is, or within [`encode_beside`] (when
/// long enough) as its length, its bytes handed over as a chunk.
fn serialize_beside<S: Serializer>(data: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    if data.len() < MIN_SLICE || SPLICING.with(|c| c.borrow().is_none()) {
        return s.serialize_bytes(data);
    }
    let done = s.serialize_u64(data.len() as u64)?;
    SPLICING.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            let written = std::mem::take(&mut c.current).freeze();
            if !written.is_empty() {
                c.chunks.push(written);
            }
            c.chunks.push(data.clone());
        }
    });
    Ok(done)
}

/// Bytes that deserialize as a slice of the frame when they can; on the
/// wire they are exactly what `Bytes` is.
struct FrameBytes(Bytes);

/// A borrowed [`FrameBytes`], to serialize.
struct BesideRef<'a>(&'a Bytes);

impl Serialize for BesideRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_beside(self.0, s)
    }
}

impl<'de> Deserialize<'de> for FrameBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FrameBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<FrameBytes, E> {
                Ok(FrameBytes(from_frame(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<FrameBytes, E> {
                Ok(FrameBytes(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<FrameBytes, E> {
                Ok(FrameBytes(Bytes::from(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FrameBytes, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(FrameBytes(Bytes::from(out)))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// For a `Bytes` field.
pub mod bytes {
    use super::*;

    /// As `Bytes` serializes (beside the frame within [`encode_beside`]).
    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        serialize_beside(v, s)
    }

    /// A slice of the frame when decoded within one.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        FrameBytes::deserialize(d).map(|b| b.0)
    }
}

/// For a `Vec<WriteVector>` field (the data of mutable writes).
pub mod write_vectors {
    use super::*;

    /// As the vector serializes (each write's data beside the frame
    /// within [`encode_beside`]).
    pub fn serialize<S: Serializer>(v: &[WriteVector], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|w| tahoe_api::WriteVector {
            offset: w.offset,
            data: BesideRef(&w.data),
        }))
    }

    /// Each write's data a slice of the frame when decoded within one.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WriteVector>, D::Error> {
        let writes = Vec::<tahoe_api::WriteVector<FrameBytes>>::deserialize(d)?;
        Ok(writes
            .into_iter()
            .map(|w| WriteVector {
                offset: w.offset,
                data: w.data.0,
            })
            .collect())
    }
}

/// For a `BTreeMap<ShareNum, Vec<Bytes>>` field (ranges read from shares).
pub mod share_ranges {
    use super::*;

    /// As the map serializes (each range beside the frame within
    /// [`encode_beside`]).
    pub fn serialize<S: Serializer>(
        v: &BTreeMap<ShareNum, Vec<Bytes>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, ranges)| (k, Ranges(ranges))))
    }

    /// One share's ranges, to serialize.
    struct Ranges<'a>(&'a [Bytes]);

    impl Serialize for Ranges<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(BesideRef))
        }
    }

    /// Each range a slice of the frame when decoded within one.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>, D::Error> {
        let map = BTreeMap::<ShareNum, Vec<FrameBytes>>::deserialize(d)?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|b| b.0).collect()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bincode::Options as _;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        n: u32,
        data: Bytes,
        ranges: BTreeMap<ShareNum, Vec<Bytes>>,
        writes: Vec<WriteVector>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Marked {
        n: u32,
        #[serde(with = "super::bytes")]
        data: Bytes,
        #[serde(with = "share_ranges")]
        ranges: BTreeMap<ShareNum, Vec<Bytes>>,
        #[serde(with = "write_vectors")]
        writes: Vec<WriteVector>,
    }

    fn sample() -> Plain {
        Plain {
            n: 7,
            data: Bytes::from(vec![1u8; MIN_SLICE]),
            ranges: [(
                2u8,
                vec![
                    Bytes::from(vec![2u8; MIN_SLICE + 1]),
                    Bytes::from_static(b"abc"),
                    Bytes::new(),
                ],
            )]
            .into(),
            writes: vec![WriteVector {
                offset: 9,
                data: Bytes::from(vec![3u8; 3 * MIN_SLICE]),
            }],
        }
    }

    fn wire() -> impl bincode::Options {
        bincode::DefaultOptions::new()
    }

    #[test]
    fn marked_fields_are_slices_of_the_frame_and_the_wire_format_is_unchanged() {
        let plain = sample();
        let frame = Bytes::from(wire().serialize(&plain).unwrap());
        let marked: Marked = decode_within(&frame, |f| wire().deserialize(f).unwrap());
        // The same bytes both ways.
        assert_eq!(Bytes::from(wire().serialize(&marked).unwrap()), frame);
        assert_eq!(marked.data, plain.data);
        assert_eq!(marked.ranges, plain.ranges);
        assert_eq!(marked.writes, plain.writes);
        // Share data points into the frame; small fields are copies.
        assert!(within(&frame, &marked.data));
        assert!(within(&frame, &marked.writes[0].data));
        assert!(within(&frame, &marked.ranges[&2u8][0]));
        assert!(!within(&frame, &marked.ranges[&2u8][1]));
    }

    #[test]
    fn outside_a_frame_or_from_another_buffer_the_bytes_are_copied() {
        let frame = Bytes::from(wire().serialize(&sample()).unwrap());
        let marked: Marked = wire().deserialize(&frame).unwrap();
        assert!(!within(&frame, &marked.data));
        // Decoding another buffer while a frame is set copies too.
        let other = frame.to_vec();
        let marked: Marked = decode_within(&frame, |_| wire().deserialize(&other).unwrap());
        assert!(!within(&frame, &marked.data));
        assert!(!within(&other, &marked.data));
        // The frame is cleared afterwards.
        assert!(FRAME.with(|f| f.borrow().is_none()));
    }

    #[test]
    fn encoded_beside_the_frame_the_chunks_are_the_plain_frame_and_share_the_data() {
        let plain = sample();
        let expected = wire().serialize(&plain).unwrap();
        let marked: Marked = wire().deserialize(&expected).unwrap();
        let mut head = BytesMut::new();
        head.extend_from_slice(b"HEAD");
        let chunks = encode_beside(head, |w| wire().serialize_into(w, &marked)).unwrap();
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(&joined[..4], b"HEAD");
        assert_eq!(&joined[4..], &expected[..]);
        // The three large fields are chunks of their own, the message's
        // own memory; the small range went into the frame's bytes.
        let shared = |data: &Bytes| chunks.iter().any(|c| c.as_ptr() == data.as_ptr());
        assert!(shared(&marked.data));
        assert!(shared(&marked.writes[0].data));
        assert!(shared(&marked.ranges[&2u8][0]));
        // head and n, data, lengths, range, the small ranges and the
        // write's offset, the write (the message's end).
        assert_eq!(chunks.len(), 6);
        // Outside encode_beside the fields serialize whole, and a writer
        // there fails.
        assert!(SPLICING.with(|s| s.borrow().is_none()));
        assert_eq!(wire().serialize(&marked).unwrap(), expected);
        assert!(std::io::Write::write(&mut SpliceWriter(()), b"x").is_err());
    }

    #[test]
    fn an_encoding_that_fails_or_panics_leaves_no_frame_behind() {
        let failed: Result<Vec<Bytes>, &str> = encode_beside(BytesMut::new(), |_| Err("no"));
        assert_eq!(failed.unwrap_err(), "no");
        assert!(SPLICING.with(|s| s.borrow().is_none()));
        let panicked = std::panic::catch_unwind(|| {
            let _ = encode_beside::<()>(BytesMut::new(), |_| panic!("mid-frame"));
        });
        assert!(panicked.is_err());
        assert!(SPLICING.with(|s| s.borrow().is_none()));
        let marked: Marked = wire()
            .deserialize(&wire().serialize(&sample()).unwrap())
            .unwrap();
        assert_eq!(
            wire().serialize(&marked).unwrap(),
            wire().serialize(&sample()).unwrap()
        );
    }
}
