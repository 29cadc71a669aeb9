//! JSON as Python's `json.dumps` writes it with its defaults, which is how
//! Tahoe-LAFS writes a directory entry's metadata: `", "` and `": "` as
//! separators, keys in their order, every character outside printable
//! ASCII escaped as `\uXXXX` (UTF-16 surrogate pairs above U+FFFF), and
//! floats as Python's `repr` prints them (`1e-07`, `1e+22`, `100.0`).
//!
//! So an entry we write is byte for byte the entry Tahoe-LAFS writes for
//! the same metadata. One difference is left: Python integers have no
//! size limit, ours are 64-bit, so an integer beyond that range in
//! metadata read from elsewhere comes back as a float if that entry is
//! rewritten (entries left alone keep their bytes).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// The formatter behind [`to_python_json`].
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has already escaped quotes, backslashes and control
        // characters; Python also escapes DEL and everything non-ASCII.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c == '\u{7f}' || !c.is_ascii() {
                w.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(s)
    }
}

/// `value` as Python's `json.dumps(value)` writes it.
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing a JSON value into memory cannot fail: NaN and the
    // infinities, which JSON lacks, cannot be in a serde_json::Value.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// A float as Python's `repr` prints it: the shortest digits that read
/// back exactly (Rust finds the same ones), in positional notation when
/// the decimal point falls within -4 < point <= 16 of the first digit,
/// else in exponent notation with a sign and at least two digits.
fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1;
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if -4 < point && point <= 16 {
        let n = digits.len() as i32;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        for (x, s) in [
            (1795823094.400957, "1795823094.400957"),
            (0.1, "0.1"),
            (1e-7, "1e-07"),
            (1e22, "1e+22"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (9007199254740992.0, "9007199254740992.0"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-1.5e-10, "-1.5e-10"),
            (123456.789, "123456.789"),
        ] {
            assert_eq!(python_float_repr(x), s, "{x:e}");
        }
    }

    #[test]
    fn json_is_written_as_python_writes_it() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"b": [1, -2, 3.5, true, null], "a": {"x": "caf\u00e9 \ud83c\udf89 \u007f\n\"/"}}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(to_python_json(&v)).unwrap(),
            r#"{"b": [1, -2, 3.5, true, null], "a": {"x": "caf\u00e9 \ud83c\udf89 \u007f\n\"/"}}"#
        );
    }
}
