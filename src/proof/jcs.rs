//! RFC 8785 JSON Canonicalization Scheme (JCS) over [`serde_json::Value`].
//!
//! The canonical form is what RFC-0019 event hashes are computed over, so the
//! output here must be byte-exact:
//!
//! * **Objects**: members are sorted by their names compared as arrays of
//!   UTF-16 code units (RFC 8785 §3.2.3). This is *not* the same as sorting
//!   by UTF-8 bytes or by code points: a character above U+FFFF is encoded
//!   as a surrogate pair (U+D800..U+DFFF) and therefore sorts *before*
//!   U+E000..U+FFFF. The crate enables `serde_json`'s `preserve_order` feature,
//!   so maps arrive in insertion order and are sorted here.
//! * **Strings**: `"` and `\` are escaped, the control characters
//!   U+0000..U+001F are written as `\b`, `\t`, `\n`, `\f`, `\r` where such a
//!   short form exists and as `\u00xx` (lowercase hex) otherwise; every other
//!   character, including U+007F and all non-ASCII, is written as raw UTF-8
//!   (RFC 8785 §3.2.2.2).
//! * **Numbers**: serialized like ECMAScript's `Number.prototype.toString`
//!   applied to the IEEE-754 double (RFC 8785 §3.2.2.3), via the `ryu-js`
//!   crate. Integers held by `serde_json` as `i64`/`u64` are converted to
//!   `f64` first, exactly as a JavaScript `JSON.parse` would do, so `1.0`
//!   becomes `1`, `-0.0` becomes `0`, `1e21` becomes `1e+21` and `1e-7`
//!   stays `1e-7`. **Integers with a magnitude above 2^53 lose precision**
//!   (e.g. `9007199254740993` canonicalizes to `9007199254740992`, and
//!   `u64::MAX` to `18446744073709552000`); RFC 8785 §3.2.2.3 and I-JSON
//!   (RFC 7493) accept this. Values that need exact large integers must carry
//!   them as strings.
//! * **Literals**: `true`, `false`, `null`.
//! * No whitespace anywhere.
//!
//! Serialization is iterative (an explicit stack), and nesting deeper than
//! [`MAX_DEPTH`] arrays/objects is refused with
//! [`NotCanonicalizable::TooDeep`] instead of overflowing the thread stack.
//!
//! Uses nothing else in the crate.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// The deepest nesting of arrays and objects that [`write_canonical`]
/// accepts: a top-level array counts as depth 1, so `MAX_DEPTH` nested
/// arrays are canonicalizable and `MAX_DEPTH + 1` are refused.
///
/// `serde_json`'s own parser (with its default recursion limit) refuses input
/// nested this deep already, so anything parsed from text fits; the limit
/// guards values built in code.
pub const MAX_DEPTH: usize = 128;

/// Why a value has no RFC 8785 canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCanonicalizable {
    /// A number that is NaN or infinite, or that cannot be read as a finite
    /// IEEE-754 double at all (only possible when `serde_json`'s
    /// `arbitrary_precision` feature is on). The payload is the number as
    /// text, for diagnostics.
    #[error("number {0} is not a finite IEEE-754 double and has no canonical JSON form")]
    NonFiniteNumber(String),
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    #[error("value nests arrays/objects deeper than {} levels", MAX_DEPTH)]
    TooDeep,
}

/// Appends the RFC 8785 canonical form of `value` to `out`.
///
/// On error nothing is appended: `out` is truncated back to the length it
/// had on entry.
///
/// # Errors
///
/// [`NotCanonicalizable::NonFiniteNumber`] if a number is not a finite
/// double, [`NotCanonicalizable::TooDeep`] if arrays/objects nest deeper than
/// [`MAX_DEPTH`].
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), NotCanonicalizable> {
    let start = out.len();
    let result = write_value_iteratively(value, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The RFC 8785 canonical form of `value` as bytes (always valid UTF-8).
///
/// # Errors
///
/// As [`write_canonical`].
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, NotCanonicalizable> {
    // Room for a typical event payload, so that it is not grown a few bytes at a time.
    let mut out = Vec::with_capacity(512);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// One open array or object on the explicit serialization stack.
enum Frame<'a> {
    /// An array whose remaining elements are still to be written.
    Array {
        items: std::slice::Iter<'a, Value>,
        first: bool,
    },
    /// An object whose members, in canonical order, are `members[start..end]` of the
    /// serialization's shared member list; `next` is the next one to write.
    Object {
        start: usize,
        next: usize,
        end: usize,
    },
}

/// Depth-first serialization with an explicit stack bounded by [`MAX_DEPTH`].
///
/// The members of every open object sit in one list shared by the whole serialization, each
/// object's sorted run after its parent's (objects close in the reverse order they open), so a
/// value costs two allocations however many objects it holds.
fn write_value_iteratively(root: &Value, out: &mut Vec<u8>) -> Result<(), NotCanonicalizable> {
    let mut stack: Vec<Frame<'_>> = Vec::with_capacity(8);
    let mut members: Vec<(&String, &Value)> = Vec::with_capacity(32);
    let mut pending: Option<&Value> = Some(root);
    loop {
        if let Some(value) = pending.take() {
            match value {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Number(number) => write_json_number(number, out)?,
                Value::String(string) => write_string(string, out),
                Value::Array(items) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(NotCanonicalizable::TooDeep);
                    }
                    out.push(b'[');
                    stack.push(Frame::Array {
                        items: items.iter(),
                        first: true,
                    });
                }
                Value::Object(map) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(NotCanonicalizable::TooDeep);
                    }
                    out.push(b'{');
                    let start = members.len();
                    members.extend(map.iter());
                    if let Some(own) = members.get_mut(start..) {
                        // Names in a map are unique, so an unstable sort is exact.
                        own.sort_unstable_by(|a, b| compare_utf16(a.0, b.0));
                    }
                    stack.push(Frame::Object {
                        start,
                        next: start,
                        end: members.len(),
                    });
                }
            }
        }

        let Some(frame) = stack.last_mut() else {
            return Ok(());
        };
        match frame {
            Frame::Array { items, first } => {
                if let Some(item) = items.next() {
                    if !std::mem::take(first) {
                        out.push(b',');
                    }
                    pending = Some(item);
                } else {
                    out.push(b']');
                    stack.pop();
                }
            }
            Frame::Object { start, next, end } => {
                let member = if *next < *end {
                    members.get(*next).copied()
                } else {
                    None
                };
                if let Some((name, member)) = member {
                    if *next != *start {
                        out.push(b',');
                    }
                    *next += 1;
                    write_string(name, out);
                    out.push(b':');
                    pending = Some(member);
                } else {
                    out.push(b'}');
                    members.truncate(*start);
                    stack.pop();
                }
            }
        }
    }
}

/// Orders two property names as arrays of UTF-16 code units (RFC 8785
/// §3.2.3), which is what ECMAScript's default sort does.
///
/// UTF-8 byte order is code point order, and UTF-16 order differs from it in one case only: where
/// the first characters that differ are one in U+E000..=U+FFFF (UTF-8 lead byte 0xEE or 0xEF)
/// and one above U+FFFF (lead byte 0xF0 to 0xF4), the latter's surrogate (U+D800..=U+DFFF) sorts
/// first. Equal bytes before the difference put both at the same place in a character, so bytes
/// that differ are either both lead bytes or both continuation bytes of characters with the same
/// lead byte, which order alike in both encodings.
fn compare_utf16(a: &str, b: &str) -> Ordering {
    let differing = a.bytes().zip(b.bytes()).find(|(x, y)| x != y);
    let Some((x, y)) = differing else {
        return a.len().cmp(&b.len());
    };
    let upper_bmp = |byte: u8| (0xee..=0xef).contains(&byte);
    let supplementary = |byte: u8| byte >= 0xf0;
    if upper_bmp(x) && supplementary(y) {
        Ordering::Greater
    } else if supplementary(x) && upper_bmp(y) {
        Ordering::Less
    } else {
        x.cmp(&y)
    }
}

/// Writes a `serde_json` number as the ECMAScript serialization of its
/// IEEE-754 double value (integers are converted to `f64` first).
fn write_json_number(number: &Number, out: &mut Vec<u8>) -> Result<(), NotCanonicalizable> {
    if let Some(exact) = exact_integer(number) {
        write_integer(exact, out);
        return Ok(());
    }
    match number.as_f64() {
        Some(double) => write_number(double, out),
        None => Err(NotCanonicalizable::NonFiniteNumber(number.to_string())),
    }
}

/// The largest magnitude below which every integer is exactly a double: 2^53.
const EXACT_INTEGER_LIMIT: u64 = 1 << 53;

/// The number's magnitude and sign when it is an integer whose double is exact (|n| <= 2^53).
/// ECMAScript writes such a double as its plain decimal digits (the limit is far below 1e21,
/// where exponent notation begins), so it needs no float formatting.
fn exact_integer(number: &Number) -> Option<(bool, u64)> {
    if let Some(n) = number.as_u64() {
        return (n <= EXACT_INTEGER_LIMIT).then_some((false, n));
    }
    let n = number.as_i64()?;
    (n.unsigned_abs() <= EXACT_INTEGER_LIMIT).then_some((n < 0, n.unsigned_abs()))
}

/// Writes an integer (negative flag, magnitude) in decimal; `-0` cannot occur (0 is unsigned).
fn write_integer((negative, magnitude): (bool, u64), out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = magnitude;
    for slot in digits.iter_mut().rev() {
        // `rest % 10` is a single decimal digit.
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
        start -= 1;
        if rest == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Writes `double` as ECMAScript's `Number.prototype.toString` would
/// (shortest round-trip digits; plain notation for 1e-7 < |x| < 1e21,
/// otherwise exponent notation with an explicit sign; `-0` as `0`).
fn write_number(double: f64, out: &mut Vec<u8>) -> Result<(), NotCanonicalizable> {
    if !double.is_finite() {
        return Err(NotCanonicalizable::NonFiniteNumber(double.to_string()));
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(double).as_bytes());
    Ok(())
}

/// Whether a byte of UTF-8 text must be escaped inside a JSON string. All
/// such bytes are ASCII, and ASCII bytes never occur inside a multi-byte
/// UTF-8 sequence, so scanning bytes is exact.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Where the first byte that must be escaped is, if any. Looks at eight bytes at a time: a word
/// holds such a byte exactly when one of its bytes is below 0x20 or equal to `"` or `\` (the
/// usual bit tricks, whose borrows can mislabel which byte matched but never whether one did).
fn first_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGH_BITS;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let Ok(eight) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(eight);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
        let quote = has_zero_byte(word ^ (ONES * u64::from(b'"')));
        let backslash = has_zero_byte(word ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            return chunk
                .iter()
                .position(|&b| needs_escape(b))
                .map(|p| offset + p);
        }
        offset += 8;
    }
    let rest = bytes.get(offset..).unwrap_or_default();
    rest.iter()
        .position(|&b| needs_escape(b))
        .map(|p| offset + p)
}

/// Lowercase hexadecimal digit for a nibble (`0..=15`).
fn hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + (nibble - 10)
    }
}

/// Writes `text` as a JSON string literal per RFC 8785 §3.2.2.2.
pub(crate) fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = text.as_bytes();
    while let Some(position) = first_escape(rest) {
        let (plain, tail) = rest.split_at(position);
        out.extend_from_slice(plain);
        let Some((&byte, after)) = tail.split_first() else {
            // `position` indexes an element of `rest`, so `tail` is non-empty.
            break;
        };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            control => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                hex_digit(control >> 4),
                hex_digit(control & 0x0f),
            ]),
        }
        rest = after;
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;
    use serde_json::json;
    use sha2::Digest as _;

    fn canonical_string(value: &Value) -> String {
        String::from_utf8(to_canonical_vec(value).expect("canonicalizable")).expect("UTF-8")
    }

    fn canonical_from_text(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test JSON parses");
        canonical_string(&value)
    }

    fn number_string(double: f64) -> Result<String, NotCanonicalizable> {
        let mut out = Vec::new();
        write_number(double, &mut out)?;
        Ok(String::from_utf8(out).expect("UTF-8"))
    }

    /// RFC 8785 Appendix B: IEEE-754 bit patterns and their serializations.
    #[test]
    fn rfc8785_appendix_b_number_vectors() {
        let vectors: [(u64, &str); 24] = [
            (0x0000_0000_0000_0000, "0"),
            (0x8000_0000_0000_0000, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x8000_0000_0000_0001, "-5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0xc340_0000_0000_0000, "-9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
            (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
            (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
            (0x444b_1ae4_d6e2_ef50, "1e+21"),
            (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
            (0x41b3_de43_5555_5553, "333333333.3333332"),
            (0x41b3_de43_5555_5554, "333333333.33333325"),
            (0x41b3_de43_5555_5555, "333333333.3333333"),
            (0x41b3_de43_5555_5556, "333333333.3333334"),
            (0x41b3_de43_5555_5557, "333333333.33333343"),
            (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
            (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
        ];
        for (bits, expected) in vectors {
            let double = f64::from_bits(bits);
            assert_eq!(
                number_string(double).as_deref(),
                Ok(expected),
                "bit pattern {bits:#018x}"
            );
            // The same through a serde_json value, when serde_json can hold it.
            let value = Value::Number(Number::from_f64(double).expect("finite"));
            assert_eq!(canonical_string(&value), expected, "{bits:#018x} as Value");
        }
    }

    /// RFC 8785 Appendix B: NaN and Infinity have no serialization.
    #[test]
    fn rfc8785_appendix_b_non_finite_numbers_are_errors() {
        for bits in [
            0x7fff_ffff_ffff_ffff_u64, // NaN
            0x7ff0_0000_0000_0000,     // Infinity
            0xfff0_0000_0000_0000,     // -Infinity
        ] {
            let result = number_string(f64::from_bits(bits));
            assert!(
                matches!(result, Err(NotCanonicalizable::NonFiniteNumber(_))),
                "{bits:#018x}: {result:?}"
            );
        }
    }

    #[test]
    fn integers_are_serialized_as_doubles() {
        let cases: [(Value, &str); 12] = [
            (json!(0), "0"),
            (json!(1), "1"),
            (json!(-1), "-1"),
            (json!(1.0), "1"),
            (json!(-0.0), "0"),
            (json!(1e21), "1e+21"),
            (json!(1e20), "100000000000000000000"),
            (json!(1e-7), "1e-7"),
            (json!(9_007_199_254_740_993_u64), "9007199254740992"),
            (json!(u64::MAX), "18446744073709552000"),
            (json!(i64::MIN), "-9223372036854776000"),
            (json!(123_456_789_012_345_678_i64), "123456789012345680"),
        ];
        for (value, expected) in cases {
            assert_eq!(canonical_string(&value), expected, "{value}");
        }
        // Parsed from text too (serde_json keeps these as i64/u64/f64).
        assert_eq!(
            canonical_from_text("[1, 1.0, -0, -0.0, 1E21, 0.0000001, 4.50]"),
            "[1,1,0,0,1e+21,1e-7,4.5]"
        );
    }

    /// RFC 8785 §3.2.3 sorting example: UTF-16 code-unit order puts the emoji
    /// (a surrogate pair, 0xD83D...) before U+FB33, unlike UTF-8 byte order.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                        \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\
                        \"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\
                        \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canonical_from_text(input), expected);

        // The property values in the RFC's resulting order.
        let value: Value = serde_json::from_str(input).expect("parses");
        let reparsed: Value =
            serde_json::from_slice(&to_canonical_vec(&value).expect("ok")).expect("reparses");
        let order: Vec<&str> = reparsed
            .as_object()
            .expect("object")
            .values()
            .map(|v| v.as_str().expect("string"))
            .collect();
        assert_eq!(
            order,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh",
            ]
        );
    }

    #[test]
    fn supplementary_characters_sort_before_private_use_area() {
        // UTF-8 byte order would put U+E000 (EE 80 80) before U+10000
        // (F0 90 80 80); UTF-16 order (D800 DC00 < E000) does the opposite.
        let mut map = serde_json::Map::new();
        map.insert("\u{e000}".to_owned(), json!(1));
        map.insert("\u{10000}".to_owned(), json!(2));
        map.insert("\u{ffff}".to_owned(), json!(3));
        map.insert("a".to_owned(), json!(4));
        map.insert(String::new(), json!(5));
        map.insert("ab".to_owned(), json!(6));
        assert_eq!(
            canonical_string(&Value::Object(map)),
            "{\"\":5,\"a\":4,\"ab\":6,\"\u{10000}\":2,\"\u{e000}\":1,\"\u{ffff}\":3}"
        );
    }

    /// The RFC 8785 §3.2.3/§3.2.4 example (numbers, string escapes and
    /// literals) as JSON text.
    const RFC_EXAMPLE_INPUT: &str = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;

    /// The RFC's canonical form of [`RFC_EXAMPLE_INPUT`].
    const RFC_EXAMPLE_OUTPUT: &str = "{\"literals\":[null,true,false],\
        \"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
        \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";

    /// RFC 8785 §3.2.3/§3.2.4 example, with the expected UTF-8 bytes in hex
    /// as given in the RFC. The value is built in code (Rust's own, correctly
    /// rounded float parsing for the numbers) so that this tests the
    /// canonicalization alone; [`rfc8785_example_parsed_from_text`] checks
    /// the same example through `serde_json`'s parser.
    #[test]
    fn rfc8785_string_escape_example() {
        let number = |text: &str| -> Value {
            let double: f64 = text.parse().expect("float literal");
            Value::Number(Number::from_f64(double).expect("finite"))
        };
        let value = json!({
            "numbers": [
                number("333333333.33333329"),
                number("1E30"),
                number("4.50"),
                number("2e-3"),
                number("0.000000000000000000000000001"),
            ],
            "string": "\u{20ac}$\u{f}\u{a}A'\u{42}\u{22}\u{5c}\\\"/",
            "literals": [null, true, false],
        });
        let canonical = canonical_string(&value);
        assert_eq!(canonical, RFC_EXAMPLE_OUTPUT);

        let expected_hex = "7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 \
                            75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a \
                            5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 \
                            65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 \
                            5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 \
                            30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d";
        let actual_hex: Vec<String> = canonical.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(actual_hex.join(" "), expected_hex);
    }

    /// The RFC 8785 example parsed from its JSON text. `333333333.33333329`
    /// lies close to a rounding boundary: `serde_json`'s default float parser
    /// reads it one ULP off (giving `333333333.33333325`), so byte-exact
    /// hashes of parsed input need `serde_json`'s `float_roundtrip` feature.
    #[test]
    fn rfc8785_example_parsed_from_text() {
        let value: Value = serde_json::from_str(RFC_EXAMPLE_INPUT).expect("parses");
        assert_eq!(
            canonical_string(&value),
            RFC_EXAMPLE_OUTPUT,
            "serde_json misread a float: enable serde_json's `float_roundtrip` feature"
        );
    }

    #[test]
    fn every_control_character_and_specials_in_strings() {
        let all_controls: String = (0_u8..0x20).map(char::from).collect();
        let expected = "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\
                        \\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\
                        \\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\
                        \\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"";
        assert_eq!(canonical_string(&json!(all_controls)), expected);

        // U+007F, '/', U+2028/U+2029, non-ASCII and astral characters stay raw.
        let raw = "a/\u{7f}\u{2028}\u{2029}\u{e9}\u{fffd}\u{1f680}'<>&";
        assert_eq!(canonical_string(&json!(raw)), format!("\"{raw}\""));

        assert_eq!(canonical_string(&json!("\"\\")), r#""\"\\""#);
        assert_eq!(canonical_string(&json!("")), r#""""#);
        assert_eq!(
            canonical_string(&json!("x\u{1f}y\"z\n")),
            r#""x\u001fy\"z\n""#
        );
    }

    #[test]
    fn member_names_are_escaped_like_strings() {
        let value = json!({"b\"": 1, "a\n": 2, "\u{1}": 3});
        assert_eq!(canonical_string(&value), r#"{"\u0001":3,"a\n":2,"b\"":1}"#);
    }

    #[test]
    fn scalars_empty_containers_and_nesting() {
        assert_eq!(canonical_string(&json!(null)), "null");
        assert_eq!(canonical_string(&json!(true)), "true");
        assert_eq!(canonical_string(&json!(false)), "false");
        assert_eq!(canonical_string(&json!([])), "[]");
        assert_eq!(canonical_string(&json!({})), "{}");
        assert_eq!(canonical_string(&json!([[], {}, [[]]])), "[[],{},[[]]]");
        assert_eq!(
            canonical_from_text(r#" { "z" : [ 3 , { "y" : 1 , "x" : [ ] } ] , "a" : { } } "#),
            r#"{"a":{},"z":[3,{"x":[],"y":1}]}"#
        );
        // Array order is preserved, never sorted.
        assert_eq!(canonical_string(&json!([3, 1, 2])), "[3,1,2]");
    }

    #[test]
    fn write_canonical_appends() {
        let mut out = b"prefix:".to_vec();
        write_canonical(&json!({"b": 1, "a": [true]}), &mut out).expect("ok");
        assert_eq!(out, br#"prefix:{"a":[true],"b":1}"#);
    }

    /// Known answer from `shared/fixtures/openintent_chained.jsonl`: the event
    /// with id e647cb8f-…, minus its `event_hash`, hashes (SHA-256 over the
    /// canonical bytes, base64url without padding) to the fixture's value.
    #[test]
    fn fixture_event_hash_known_answer() {
        let event = r#"{"id": "e647cb8f-74e6-4a5d-8dd2-7a65bd628881", "intent_id": "6513270e-269e-4d37-b2a7-4de452e6b438", "event_type": "comment", "payload": {"message": "Starting rank compare phase \u2014 caf\u00e9 \ud83d\ude80", "nested": {"list": [1, 2.5, -0.0, 1e+21, null, true, "\u00e9"], "deep": {"a": {"b": {"c": [[]]}}}}}, "created_at": "2026-11-20T09:00:11.997949Z", "actor": "agent-critic", "sequence": 13, "previous_event_hash": "sha256:IPXT_PFWuiX9XR7y6B91o41KoDTG0K7WKg1AeRc-UAc"}"#;
        let value: Value = serde_json::from_str(event).expect("fixture parses");
        let canonical = to_canonical_vec(&value).expect("canonicalizable");

        let expected_canonical = "{\"actor\":\"agent-critic\",\
            \"created_at\":\"2026-11-20T09:00:11.997949Z\",\
            \"event_type\":\"comment\",\
            \"id\":\"e647cb8f-74e6-4a5d-8dd2-7a65bd628881\",\
            \"intent_id\":\"6513270e-269e-4d37-b2a7-4de452e6b438\",\
            \"payload\":{\"message\":\"Starting rank compare phase \u{2014} caf\u{e9} \u{1f680}\",\
            \"nested\":{\"deep\":{\"a\":{\"b\":{\"c\":[[]]}}},\
            \"list\":[1,2.5,0,1e+21,null,true,\"\u{e9}\"]}},\
            \"previous_event_hash\":\"sha256:IPXT_PFWuiX9XR7y6B91o41KoDTG0K7WKg1AeRc-UAc\",\
            \"sequence\":13}";
        assert_eq!(
            std::str::from_utf8(&canonical).expect("UTF-8"),
            expected_canonical
        );

        let digest = sha2::Sha256::digest(&canonical);
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert_eq!(hash, "jov6_DfsS3C1rGemORrepCLXPaQeYZFMuWn2pWhKHV4");
    }

    /// `depth` nested arrays, innermost empty, built without recursion.
    fn nested_arrays(depth: usize) -> Value {
        let mut value = Value::Array(Vec::new());
        for _ in 1..depth {
            value = Value::Array(vec![value]);
        }
        value
    }

    /// `depth` nested objects `{"k":{"k":…{}}}`, built without recursion.
    fn nested_objects(depth: usize) -> Value {
        let mut value = Value::Object(serde_json::Map::new());
        for _ in 1..depth {
            let mut map = serde_json::Map::new();
            map.insert("k".to_owned(), value);
            value = Value::Object(map);
        }
        value
    }

    /// Tears a deeply nested value down one level at a time: `serde_json`'s
    /// recursive `Drop` would overflow the test thread's stack on 100,000
    /// levels.
    fn dismantle(value: Value) {
        let mut current = value;
        loop {
            current = match current {
                Value::Array(mut items) => match items.pop() {
                    Some(inner) => inner,
                    None => return,
                },
                Value::Object(map) => match map.into_iter().next() {
                    Some((_, inner)) => inner,
                    None => return,
                },
                _ => return,
            };
        }
    }

    #[test]
    fn max_depth_is_accepted() {
        let arrays = nested_arrays(MAX_DEPTH);
        let expected = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(canonical_string(&arrays), expected);

        let objects = nested_objects(MAX_DEPTH);
        let expected = format!(
            "{}{{}}{}",
            "{\"k\":".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(canonical_string(&objects), expected);

        // The deepest input serde_json's parser accepts by default fits too.
        let parsed_depth = MAX_DEPTH - 1;
        let text = format!("{}{}", "[".repeat(parsed_depth), "]".repeat(parsed_depth));
        assert_eq!(canonical_from_text(&text), text);
    }

    #[test]
    fn one_level_too_deep_is_an_error() {
        let mut out = b"keep".to_vec();
        let arrays = nested_arrays(MAX_DEPTH + 1);
        assert_eq!(
            write_canonical(&arrays, &mut out),
            Err(NotCanonicalizable::TooDeep)
        );
        assert_eq!(out, b"keep", "nothing is appended on error");

        let objects = nested_objects(MAX_DEPTH + 1);
        assert_eq!(to_canonical_vec(&objects), Err(NotCanonicalizable::TooDeep));

        // Mixed nesting, with the overflow in the middle of a sibling list.
        let mixed = json!({"a": [1, 2, {"b": nested_arrays(MAX_DEPTH - 2)}], "c": 3});
        assert_eq!(to_canonical_vec(&mixed), Err(NotCanonicalizable::TooDeep));
        let fits = json!({"a": [1, 2, {"b": nested_arrays(MAX_DEPTH - 3)}], "c": 3});
        assert!(to_canonical_vec(&fits).is_ok());
    }

    #[test]
    fn hundred_thousand_levels_error_without_stack_overflow() {
        let arrays = nested_arrays(100_000);
        assert_eq!(to_canonical_vec(&arrays), Err(NotCanonicalizable::TooDeep));
        dismantle(arrays);

        let objects = nested_objects(100_000);
        assert_eq!(to_canonical_vec(&objects), Err(NotCanonicalizable::TooDeep));
        dismantle(objects);
    }

    #[test]
    fn error_messages_are_descriptive() {
        assert_eq!(
            NotCanonicalizable::TooDeep.to_string(),
            "value nests arrays/objects deeper than 128 levels"
        );
        let nan = number_string(f64::NAN).expect_err("NaN");
        assert_eq!(
            nan.to_string(),
            "number NaN is not a finite IEEE-754 double and has no canonical JSON form"
        );
    }

    /// A plain recursive canonicalization to hold the iterative one to: members sorted by their
    /// UTF-16 code units, numbers through the double formatter.
    fn reference(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    reference(item, out);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                members.sort_by_key(|(name, _)| name.encode_utf16().collect::<Vec<u16>>());
                out.push(b'{');
                for (i, (name, member)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(name, out);
                    out.push(b':');
                    reference(member, out);
                }
                out.push(b'}');
            }
            Value::Number(n) => write_number(n.as_f64().unwrap(), out).unwrap(),
            scalar => write_canonical(scalar, out).unwrap(),
        }
    }

    /// Names drawn mostly from characters where byte order and UTF-16 order disagree.
    fn name() -> impl Strategy<Value = String> {
        let interesting = prop_oneof![
            Just('a'),
            Just('b'),
            Just('\u{7f}'),
            Just('\u{e9}'),
            Just('\u{d7ff}'),
            Just('\u{e000}'),
            Just('\u{ffff}'),
            Just('\u{10000}'),
            Just('\u{1f600}'),
            any::<char>(),
        ];
        proptest::collection::vec(interesting, 0..4).prop_map(|chars| chars.into_iter().collect())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 54)..(1i64 << 54)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            name().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((name(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Strings are escaped exactly as serde_json escapes them, which is RFC 8785's way too.
        #[test]
        fn strings_escape_as_serde_json_does(text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f]){0,40}") {
            let mut out = Vec::new();
            write_string(&text, &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn names_order_as_utf16_code_units(a in name(), b in name(), shared in name()) {
            let (a, b) = (format!("{shared}{a}"), format!("{shared}{b}"));
            prop_assert_eq!(compare_utf16(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }

        /// Integers are written as ECMAScript writes the double they become, rounding included.
        #[test]
        #[allow(clippy::cast_precision_loss)]
        fn integers_write_as_their_doubles_do(
            n in any::<i64>(),
            m in any::<u64>(),
            near_the_limit in -(1i64 << 54)..(1i64 << 54),
        ) {
            let cases = [
                (json!(n), n as f64),
                (json!(m), m as f64),
                (json!(near_the_limit), near_the_limit as f64),
            ];
            for (value, double) in cases {
                prop_assert_eq!(canonical_string(&value), number_string(double).unwrap());
            }
        }

        #[test]
        fn nested_values_canonicalize_as_the_plain_recursion_does(value in json_value()) {
            let mut expected = Vec::new();
            reference(&value, &mut expected);
            prop_assert_eq!(to_canonical_vec(&value).unwrap(), expected);
        }
    }
}
