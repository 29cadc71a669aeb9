//! Share data decoded without a copy: as slices of the frame that carried
//! it.
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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use ::bytes::Bytes;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::kinds::storage::{ShareNum, WriteVector};

thread_local! {
    /// The frame being decoded on this thread, if any.
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
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

/// Bytes that deserialize as a slice of the frame when they can; they
/// serialize (and deserialize) exactly as `Bytes` does.
struct FrameBytes(Bytes);

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

    /// As `Bytes` serializes.
    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    /// A slice of the frame when decoded within one.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        FrameBytes::deserialize(d).map(|b| b.0)
    }
}

/// For a `Vec<WriteVector>` field (the data of mutable writes).
pub mod write_vectors {
    use super::*;

    /// As the vector serializes.
    pub fn serialize<S: Serializer>(v: &[WriteVector], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
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

    /// As the map serializes.
    pub fn serialize<S: Serializer>(
        v: &BTreeMap<ShareNum, Vec<Bytes>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.serialize(s)
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
}
