//! JSON text written by hand into a buffer, byte for byte as `serde_json`'s compact writer
//! writes the same strings and numbers, for the readers that write events' JSON straight from
//! their records: strings are scanned eight bytes at a time for what needs escaping (most need
//! nothing, and are copied whole), numbers go through `serde_json`'s own formatter.
//!
//! Uses nothing else in the crate.

use serde_json::ser::{CharEscape, CompactFormatter, Formatter as _};

/// Eight copies of the byte `b`.
const fn every_byte(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// Whether any of the eight bytes of `word` is one a JSON string escapes: a control character
/// (below `0x20`), `"` or `\`.
fn needs_escape(word: u64) -> bool {
    const HIGH: u64 = every_byte(0x80);
    // A byte below n (n <= 0x80) sets its high bit in (x - n) where it was clear in x.
    let below = |x: u64, n: u8| x.wrapping_sub(every_byte(n)) & !x & HIGH;
    let quote = word ^ every_byte(b'"');
    let backslash = word ^ every_byte(b'\\');
    (below(word, 0x20) | below(quote, 1) | below(backslash, 1)) != 0
}

/// The escape `serde_json` writes for `byte`, if it writes one.
fn escape_of(byte: u8) -> Option<CharEscape> {
    Some(match byte {
        b'"' => CharEscape::Quote,
        b'\\' => CharEscape::ReverseSolidus,
        0x08 => CharEscape::Backspace,
        0x0c => CharEscape::FormFeed,
        b'\n' => CharEscape::LineFeed,
        b'\r' => CharEscape::CarriageReturn,
        b'\t' => CharEscape::Tab,
        0x00..=0x1f => CharEscape::AsciiControl(byte),
        _ => return None,
    })
}

/// Appends `text` as a JSON string: quoted, escaped as `serde_json` escapes it.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Where the bytes not yet copied begin.
    let mut copied = 0;
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    // The last few bytes padded with a letter, which needs no escape.
    let mut last = [b'a'; 8];
    if let Some(head) = last.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    let whole = words.map(|word| <[u8; 8]>::try_from(word).unwrap_or([b'a'; 8]));
    for (word_at, word) in whole.chain(std::iter::once(last)).enumerate() {
        if !needs_escape(u64::from_ne_bytes(word)) {
            continue;
        }
        let start = word_at * 8;
        for (at, &byte) in bytes.iter().enumerate().skip(start).take(8) {
            if let Some(escape) = escape_of(byte) {
                out.extend_from_slice(bytes.get(copied..at).unwrap_or_default());
                // Writing into a Vec cannot fail.
                let _ = CompactFormatter.write_char_escape(out, escape);
                copied = at + 1;
            }
        }
    }
    out.extend_from_slice(bytes.get(copied..).unwrap_or_default());
    out.push(b'"');
}

/// Appends `n` as `serde_json` writes a `u64`.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    // Writing into a Vec cannot fail.
    let _ = CompactFormatter.write_u64(out, n);
}

/// Appends `n` as `serde_json` writes an `i64`.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    // Writing into a Vec cannot fail.
    let _ = CompactFormatter.write_i64(out, n);
}

/// Appends `x` as `serde_json` writes an `f64`: its shortest form, or `null` when it is not
/// finite.
pub(crate) fn write_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        // Writing into a Vec cannot fail.
        let _ = CompactFormatter.write_f64(out, x);
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn written(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    /// Every byte that needs escaping is found at every place in a word, and nothing else is.
    #[test]
    fn each_byte_is_escaped_as_serde_json_escapes_it() {
        for byte in 0..=0x7fu8 {
            for place in 0..20 {
                let mut text = "a".repeat(20);
                text.replace_range(place..=place, &char::from(byte).to_string());
                assert_eq!(
                    written(&text),
                    serde_json::to_string(&text).unwrap(),
                    "{byte:#x} at {place}"
                );
            }
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for n in [0, 1, 9, 10, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
        for n in [i64::MIN, -1, 0, i64::MAX] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
        for x in [
            0.0,
            -0.0,
            1.0,
            0.734,
            1e300,
            5e-324,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, x);
            assert_eq!(out, serde_json::to_vec(&x).unwrap(), "{x}");
        }
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(text in any::<String>()) {
            prop_assert_eq!(written(&text), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn strings_of_json_specials_are_written_as_serde_json_writes_them(
            text in "[\\x00-\\x1f\"\\\\\\x7fa-z\u{e9}\u{2028}\u{1f600}]{0,40}"
        ) {
            prop_assert_eq!(written(&text), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn any_float_is_written_as_serde_json_writes_it(x in any::<f64>()) {
            let mut out = Vec::new();
            write_f64(&mut out, x);
            prop_assert_eq!(out, serde_json::to_vec(&x).unwrap());
        }
    }
}
