//! A compact binary form of JSON values, in which records keep payloads and proofs: it decodes
//! straight into a [`serde_json::Value`], with no text to parse, and is written as JSON text
//! ([`write_json_prefix`]) straight from its bytes, with no `Value` built, for a reader that only
//! wants the text, or checked with nothing built ([`check_prefix`]) for a payload decoded later.
//!
//! A value is a tag byte, then what the tag says follows. Numbers keep their kind (unsigned,
//! negative, float) and their exact value; objects keep their members in order. Lengths and
//! counts are LEB128 varints, and small ones live in the tag itself:
//!
//! | tag | value | followed by |
//! |---|---|---|
//! | `0x00`, `0x01`, `0x02` | `null`, `false`, `true` | nothing |
//! | `0x03` | an integer `n >= 0` | varint `n` |
//! | `0x04` | an integer `n < 0` | varint `-(n + 1)` |
//! | `0x05` | a float | its IEEE-754 bits, 8 bytes little-endian |
//! | `0x06` | a float equal to `m / 10^k` | zigzag varint `m`, one byte `k` (at most 22) |
//! | `0x07` | a string | varint byte length, UTF-8 bytes |
//! | `0x08` | an array | varint count, the items |
//! | `0x09` | an object | varint count, the members: varint name length, name, value |
//! | `0x0a` | an object with common names | varint count, the members: name reference, value |
//! | `0x20` + n (n < 32) | a string of n bytes | UTF-8 bytes |
//! | `0x40` + n (n < 16) | an array of n items | the items |
//! | `0x50` + n (n < 16) | an object of n members | the members |
//! | `0x60` + n (n < 16) | an object of n members, with common names | the members |
//! | `0x80` + n (n < 128) | the integer n | nothing |
//!
//! In an object with common names, each member's name is a varint reference `r`: an odd `r` is
//! the name [`COMMON_NAMES`]`[r / 2]`, an even `r` says `r / 2` bytes of name (UTF-8) follow. The
//! encoder writes that form only for an object with at least one common name.
//!
//! A float takes the decimal form (`0x06`) only when dividing `m` by `10^k` gives back its very
//! bits (IEEE division rounds correctly, and both are exact doubles), so `0.734` takes 4 bytes
//! instead of 9 and still decodes to the same `f64`.
//!
//! Decoding trusts nothing: every length and count is checked against the bytes that remain
//! before anything is allocated for it, nesting is limited to [`MAX_DEPTH`] (append writes two
//! levels less, but records written before it took more still decode), and
//! any fault is a [`DecodeError`] naming its byte offset. Decoding and writing text read tags
//! through one step, so they refuse the same bytes.
//!
//! Uses `proof::jcs`, `engine::json_text`.

use std::collections::HashSet;
use std::fmt;

use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::engine::json_text;

/// Member names that payloads of `OpenIntent` events and of oidb's own helpers use often (taken
/// from the protocol's sample events and from `src/observe/`), referred to by their place in this
/// list. The list is part of the file format: it only ever grows, at its end (`docs/format.md`
/// lists it).
pub(crate) const COMMON_NAMES: &[&str] = &[
    "provider",
    "model",
    "stream_id",
    "request_id",
    "messages_count",
    "stream",
    "tools_available",
    "temperature",
    "max_tokens",
    "chunk_index",
    "token_count",
    "duration_ms",
    "tool_name",
    "tool_id",
    "arguments",
    "query",
    "limit",
    "agent_id",
    "intent_id",
    "status",
    "chunks_received",
    "tokens_streamed",
    "started_at",
    "response_content",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "parent_request_id",
    "result",
    "rows",
    "text",
    "patches",
    "op",
    "path",
    "value",
    "version",
    "title",
    "role",
    "message",
    "completed_at",
    "error",
    "lease_id",
    "duration_seconds",
    "type",
    "timestamp",
    "id",
    "metadata",
    "usage",
    "input_tokens",
    "output_tokens",
    "level",
    "hits",
    "raw",
    "key",
    "cache_read_input_tokens",
    "block_id",
    "server_name",
    "choices",
    "args",
];

/// The place of `name` in [`COMMON_NAMES`]: a look among the few common names of its length.
fn common_name(name: &str) -> Option<u64> {
    type ByLength = Vec<Vec<(&'static str, u64)>>;
    static BY_LENGTH: std::sync::OnceLock<ByLength> = std::sync::OnceLock::new();
    let by_length = BY_LENGTH.get_or_init(|| {
        let longest = COMMON_NAMES
            .iter()
            .map(|name| name.len())
            .max()
            .unwrap_or(0);
        let mut by_length = vec![Vec::new(); longest + 1];
        for (code, &name) in (0u64..).zip(COMMON_NAMES) {
            if let Some(same_length) = by_length.get_mut(name.len()) {
                same_length.push((name, code));
            }
        }
        by_length
    });
    by_length
        .get(name.len())?
        .iter()
        .find(|(common, _)| *common == name)
        .map(|&(_, code)| code)
}

/// The deepest nesting of arrays and objects encoded or decoded ([`crate::jcs::MAX_DEPTH`]; a
/// top-level array or object is level 1). Append refuses values two levels shallower first (see
/// `writer::validate::MAX_VALUE_DEPTH`); decoding keeps this limit, so records written before still read.
pub(crate) const MAX_DEPTH: usize = crate::proof::jcs::MAX_DEPTH;

const NULL: u8 = 0x00;
const FALSE: u8 = 0x01;
const TRUE: u8 = 0x02;
const UNSIGNED: u8 = 0x03;
const NEGATIVE: u8 = 0x04;
const FLOAT: u8 = 0x05;
const DECIMAL: u8 = 0x06;
const STRING: u8 = 0x07;
const ARRAY: u8 = 0x08;
const OBJECT: u8 = 0x09;
const NAMED_OBJECT: u8 = 0x0a;
const SHORT_STRING: u8 = 0x20;
const SHORT_ARRAY: u8 = 0x40;
const SHORT_OBJECT: u8 = 0x50;
const SHORT_NAMED_OBJECT: u8 = 0x60;
const SMALL_INTEGER: u8 = 0x80;

const SHORT_STRING_MAX: usize = 31;
const SHORT_CONTAINER_MAX: usize = 15;
const SMALL_INTEGER_MAX: u64 = 127;

/// The powers of ten that are exact doubles: `10^0` to `10^22`.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The largest integer below which every integer is an exact double: `2^53`.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A value nests arrays and objects deeper than [`MAX_DEPTH`]; it was not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep;

/// Appends the binary form of `value` to `out`, and returns the length of its JSON text as
/// `value.to_string()` writes it (the form in which payload limits are stated), measured on the
/// way instead of by writing the text. On error, `out` is left as it was.
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) -> Result<usize, TooDeep> {
    let start = out.len();
    let result = Encoder { out }.value(value, 0);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The binary form of `value`.
pub(crate) fn to_vec(value: &Value) -> Result<Vec<u8>, TooDeep> {
    let mut out = Vec::new();
    encode(value, &mut out)?;
    Ok(out)
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    /// Encodes `value`, whose enclosing arrays and objects number `depth`; returns its JSON length.
    fn value(&mut self, value: &Value, depth: usize) -> Result<usize, TooDeep> {
        match value {
            Value::Null => {
                self.out.push(NULL);
                Ok(4)
            }
            Value::Bool(false) => {
                self.out.push(FALSE);
                Ok(5)
            }
            Value::Bool(true) => {
                self.out.push(TRUE);
                Ok(4)
            }
            Value::Number(number) => Ok(self.number(number)),
            Value::String(text) => {
                self.sized(STRING, SHORT_STRING, SHORT_STRING_MAX, text.len());
                self.out.extend_from_slice(text.as_bytes());
                Ok(quoted_len(text))
            }
            Value::Array(items) => {
                if depth == MAX_DEPTH {
                    return Err(TooDeep);
                }
                self.sized(ARRAY, SHORT_ARRAY, SHORT_CONTAINER_MAX, items.len());
                let mut json_len = 2 + items.len().saturating_sub(1);
                for item in items {
                    json_len += self.value(item, depth + 1)?;
                }
                Ok(json_len)
            }
            Value::Object(members) => {
                if depth == MAX_DEPTH {
                    return Err(TooDeep);
                }
                let named = members.keys().any(|name| common_name(name).is_some());
                if named {
                    self.sized(
                        NAMED_OBJECT,
                        SHORT_NAMED_OBJECT,
                        SHORT_CONTAINER_MAX,
                        members.len(),
                    );
                } else {
                    self.sized(OBJECT, SHORT_OBJECT, SHORT_CONTAINER_MAX, members.len());
                }
                let mut json_len = 2 + members.len().saturating_sub(1);
                for (name, member) in members {
                    match if named { common_name(name) } else { None } {
                        Some(code) => self.varint(2 * code + 1),
                        None => {
                            let len = name.len() as u64;
                            self.varint(if named { 2 * len } else { len });
                            self.out.extend_from_slice(name.as_bytes());
                        }
                    }
                    json_len += quoted_len(name) + 1 + self.value(member, depth + 1)?;
                }
                Ok(json_len)
            }
        }
    }

    /// A tag with a length: in the tag itself when it is at most `short_max`.
    fn sized(&mut self, long: u8, short: u8, short_max: usize, len: usize) {
        if len <= short_max {
            self.out.push(short + len as u8);
        } else {
            self.out.push(long);
            self.varint(len as u64);
        }
    }

    fn number(&mut self, number: &Number) -> usize {
        if let Some(n) = number.as_u64() {
            if n <= SMALL_INTEGER_MAX {
                self.out.push(SMALL_INTEGER + n as u8);
            } else {
                self.out.push(UNSIGNED);
                self.varint(n);
            }
            decimal_digits(n)
        } else if let Some(n) = number.as_i64() {
            // Negative: serde_json holds every non-negative integer as a u64.
            self.out.push(NEGATIVE);
            self.varint(n.unsigned_abs() - 1);
            1 + decimal_digits(n.unsigned_abs())
        } else {
            let float = number.as_f64().unwrap_or(f64::NAN);
            match decimal_form(float) {
                Some((mantissa, exponent)) => {
                    self.out.push(DECIMAL);
                    self.varint(zigzag(mantissa));
                    self.out.push(exponent);
                }
                None => {
                    self.out.push(FLOAT);
                    self.out.extend_from_slice(&float.to_le_bytes());
                }
            }
            let mut counter = TextLength(0);
            // Writing to a counter cannot fail.
            let _ = fmt::Write::write_fmt(&mut counter, format_args!("{number}"));
            counter.0
        }
    }

    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }
}

/// Counts the bytes written to it.
struct TextLength(usize);

impl fmt::Write for TextLength {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// How many decimal digits `n` has.
fn decimal_digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The length of `text` as a JSON string, quotes included, escaped as `serde_json` escapes: `"` and
/// `\` and the control characters with a short form take 2 bytes, other control characters 6.
fn quoted_len(text: &str) -> usize {
    // Most text needs no escape: count the bytes that do in a loop the compiler vectorizes, and
    // look closer only when there are some.
    let needs_escape = text
        .bytes()
        .map(|b| usize::from(b < 0x20 || b == b'"' || b == b'\\'))
        .sum::<usize>();
    if needs_escape == 0 {
        return 2 + text.len();
    }
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// `(m, k)` with `m / 10^k` exactly `float` (bit for bit), `k` as small as can be; `None` when
/// there is none with `|m| < 2^53` and `k <= 22`.
fn decimal_form(float: f64) -> Option<(i64, u8)> {
    for (exponent, power) in (0u8..).zip(POWERS_OF_TEN) {
        let mantissa = (float * power).round();
        if mantissa.is_nan() || mantissa.abs() >= EXACT_INTEGER_LIMIT {
            return None;
        }
        // |mantissa| < 2^53: both conversions are exact. Going through the integer is what the
        // decoder does, and keeps -0.0 (whose mantissa would be the integer 0) out.
        let mantissa = mantissa as i64;
        #[allow(clippy::cast_precision_loss)]
        if (mantissa as f64 / power).to_bits() == float.to_bits() {
            return Some((mantissa, exponent));
        }
    }
    None
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)).cast_unsigned()
}

fn unzigzag(n: u64) -> i64 {
    (n >> 1).cast_signed() ^ -(n & 1).cast_signed()
}

/// Why bytes are not a binary JSON value, and where (a byte offset in what was decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

fn fault(offset: usize, reason: impl Into<String>) -> DecodeError {
    DecodeError {
        offset,
        reason: reason.into(),
    }
}

fn finite(start: usize, float: f64) -> Result<f64, DecodeError> {
    if float.is_finite() {
        Ok(float)
    } else {
        Err(fault(start, "a number that is not finite"))
    }
}

fn enter(depth: usize, start: usize) -> Result<usize, DecodeError> {
    if depth == MAX_DEPTH {
        return Err(fault(
            start,
            format!("arrays and objects nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(depth + 1)
}

/// Decodes the value at the start of `bytes`; returns it and how many bytes it took.
pub(crate) fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut decoder = Decoder { bytes, at: 0 };
    let value = decoder.value(0)?;
    Ok((value, decoder.at))
}

/// What one tag and what follows it say: a whole scalar, or the start of an array or object
/// (whose items or members come next). The decoder and the walk that writes text (or only
/// checks) both read values through it, so they accept and refuse the same bytes.
enum Token<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Negative(i64),
    /// A finite float.
    Float(f64),
    Text(&'a str),
    /// An array of this many items.
    Array(usize),
    /// An object of `len` members; `named`: with common names (tags `0x0a`, `0x60`–`0x6f`).
    Object {
        len: usize,
        named: bool,
    },
}

struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| fault(self.at, "truncated: a byte is missing"))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let taken = self
            .at
            .checked_add(len)
            .and_then(|end| self.bytes.get(self.at..end))
            .ok_or_else(|| {
                fault(
                    self.at,
                    format!(
                        "truncated: {len} bytes announced, {} remain",
                        self.remaining()
                    ),
                )
            })?;
        self.at += len;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.at;
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            n |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(fault(start, "a varint runs past 64 bits"))
    }

    /// A length or count of things that take at least `min_bytes` each: never more than the
    /// bytes that remain could hold, so nothing is allocated for bytes that are not there.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let start = self.at;
        let n = self.varint()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_bytes) <= self.remaining());
        fits.ok_or_else(|| {
            fault(
                start,
                format!(
                    "truncated: {n} announced, only {} bytes remain",
                    self.remaining()
                ),
            )
        })
    }

    /// A member name in an object with common names: a common name's place, or a name's length
    /// and bytes (see the module's doc).
    fn name_reference(&mut self, name_at: usize) -> Result<&'a str, DecodeError> {
        let reference = self.varint()?;
        if reference & 1 == 1 {
            let code = reference / 2;
            return usize::try_from(code)
                .ok()
                .and_then(|code| COMMON_NAMES.get(code))
                .copied()
                .ok_or_else(|| fault(name_at, format!("unknown common name {code}")));
        }
        let len = usize::try_from(reference / 2)
            .ok()
            .filter(|&len| len <= self.remaining())
            .ok_or_else(|| {
                fault(
                    name_at,
                    format!(
                        "truncated: a name of {} bytes announced, only {} bytes remain",
                        reference / 2,
                        self.remaining()
                    ),
                )
            })?;
        self.text(len)
    }

    /// The name of the next member of an object (`named`: one with common names).
    fn member_name(&mut self, named: bool) -> Result<&'a str, DecodeError> {
        if named {
            self.name_reference(self.at)
        } else {
            let len = self.count(1)?;
            self.text(len)
        }
    }

    fn text(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        let start = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|e| fault(start + e.valid_up_to(), "a string is not UTF-8"))
    }

    /// The tag at the cursor and what follows it, up to an array's first item or an object's
    /// first member.
    fn token(&mut self) -> Result<Token<'a>, DecodeError> {
        let start = self.at;
        let tag = self.byte()?;
        Ok(match tag {
            NULL => Token::Null,
            FALSE => Token::Bool(false),
            TRUE => Token::Bool(true),
            UNSIGNED => Token::Unsigned(self.varint()?),
            NEGATIVE => {
                let n = self.varint()?;
                let n = i64::try_from(n)
                    .map_err(|_| fault(start, "a negative integer below i64::MIN"))?;
                Token::Negative(!n)
            }
            FLOAT => {
                let bytes = self.take(8)?;
                let bits: [u8; 8] = bytes.try_into().unwrap_or_default();
                Token::Float(finite(start, f64::from_le_bytes(bits))?)
            }
            DECIMAL => {
                let mantissa = unzigzag(self.varint()?);
                let exponent = self.byte()?;
                let power = POWERS_OF_TEN
                    .get(usize::from(exponent))
                    .ok_or_else(|| fault(start, format!("decimal exponent {exponent}")))?;
                // Any mantissa decodes to some double; the encoder writes only exact ones.
                #[allow(clippy::cast_precision_loss)]
                let float = mantissa as f64 / power;
                Token::Float(finite(start, float)?)
            }
            STRING => {
                let len = self.count(1)?;
                Token::Text(self.text(len)?)
            }
            ARRAY => Token::Array(self.count(1)?),
            OBJECT => Token::Object {
                len: self.count(2)?,
                named: false,
            },
            NAMED_OBJECT => Token::Object {
                len: self.count(2)?,
                named: true,
            },
            0x20..=0x3f => Token::Text(self.text(usize::from(tag - SHORT_STRING))?),
            0x40..=0x4f => Token::Array(usize::from(tag - SHORT_ARRAY)),
            0x50..=0x5f => Token::Object {
                len: usize::from(tag - SHORT_OBJECT),
                named: false,
            },
            0x60..=0x6f => Token::Object {
                len: usize::from(tag - SHORT_NAMED_OBJECT),
                named: true,
            },
            0x80..=0xff => Token::Unsigned(u64::from(tag - SMALL_INTEGER)),
            _ => return Err(fault(start, format!("unknown tag {tag:#04x}"))),
        })
    }

    /// Enters an array of `len` items whose tag is at `start`, inside `depth` arrays and
    /// objects; returns the depth of its items.
    fn enter_array(&self, len: usize, depth: usize, start: usize) -> Result<usize, DecodeError> {
        let depth = enter(depth, start)?;
        if len > self.remaining() {
            return Err(fault(start, format!("truncated: an array of {len} items")));
        }
        Ok(depth)
    }

    /// Enters an object of `len` members whose tag is at `start`, inside `depth` arrays and
    /// objects; returns the depth of its members.
    fn enter_object(&self, len: usize, depth: usize, start: usize) -> Result<usize, DecodeError> {
        let depth = enter(depth, start)?;
        if len.saturating_mul(2) > self.remaining() {
            return Err(fault(
                start,
                format!("truncated: an object of {len} members"),
            ));
        }
        Ok(depth)
    }

    /// The value at the cursor, inside `depth` arrays and objects.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.at;
        Ok(match self.token()? {
            Token::Null => Value::Null,
            Token::Bool(b) => Value::Bool(b),
            Token::Unsigned(n) => Value::Number(n.into()),
            Token::Negative(n) => Value::Number(n.into()),
            // The token's float is finite.
            Token::Float(float) => Number::from_f64(float).map_or(Value::Null, Value::Number),
            Token::Text(text) => Value::String(text.to_owned()),
            Token::Array(len) => {
                let depth = self.enter_array(len, depth, start)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth)?);
                }
                Value::Array(items)
            }
            Token::Object { len, named } => {
                let depth = self.enter_object(len, depth, start)?;
                let mut members = Map::with_capacity(len);
                for _ in 0..len {
                    let name_at = self.at;
                    let name = self.member_name(named)?.to_owned();
                    // A repeated name is refused before its value is read, as the walks that
                    // write text or only check refuse it: all three report the same fault.
                    match members.entry(name) {
                        Entry::Occupied(_) => return Err(fault(name_at, REPEATED_NAME)),
                        Entry::Vacant(slot) => {
                            slot.insert(self.value(depth)?);
                        }
                    }
                }
                Value::Object(members)
            }
        })
    }
}

/// What a member name met twice in one object is called.
const REPEATED_NAME: &str = "a member name repeats within its object";

/// Objects of more members than this find a repeated name with a hash set rather than by
/// comparing each name with those before it (kept in place).
const FEW_MEMBERS: usize = 16;

/// Appends to `out` the JSON text of the value at the start of `bytes`: what `serde_json`
/// writes for the [`Value`] that [`decode_prefix`] decodes from the same bytes, written as the
/// bytes are walked, with no [`Value`] built. Returns how many bytes the value took.
///
/// # Errors
/// The [`DecodeError`] [`decode_prefix`] gives for the same bytes; `out` then holds part of the
/// text, for the caller to drop.
pub(crate) fn write_json_prefix(bytes: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    walk_prefix(bytes, out)
}

/// Checks the value at the start of `bytes` as [`decode_prefix`] would, building nothing;
/// returns how many bytes it took. Bytes it accepts, [`decode_checked`] decodes.
///
/// # Errors
/// The [`DecodeError`] [`decode_prefix`] gives for the same bytes.
pub(crate) fn check_prefix(bytes: &[u8]) -> Result<usize, DecodeError> {
    walk_prefix(bytes, &mut Unwritten)
}

/// Decodes bytes [`check_prefix`] accepted (a stored payload read lazily). Bytes it did not
/// accept decode to `null`: there is no error left to report.
pub(crate) fn decode_checked(bytes: &[u8]) -> Value {
    decode_prefix(bytes).map_or(Value::Null, |(value, _)| value)
}

/// Where a walk of the bytes writes the value's JSON text: a buffer, or nowhere when the walk
/// only checks.
trait JsonOut {
    fn bytes(&mut self, bytes: &[u8]);
    fn u64(&mut self, n: u64);
    fn i64(&mut self, n: i64);
    fn f64(&mut self, x: f64);
    fn str(&mut self, text: &str);
}

impl JsonOut for Vec<u8> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn u64(&mut self, n: u64) {
        json_text::write_u64(self, n);
    }
    fn i64(&mut self, n: i64) {
        json_text::write_i64(self, n);
    }
    fn f64(&mut self, x: f64) {
        json_text::write_f64(self, x);
    }
    fn str(&mut self, text: &str) {
        json_text::write_str(self, text);
    }
}

/// The output of a walk that only checks.
struct Unwritten;

impl JsonOut for Unwritten {
    fn bytes(&mut self, _: &[u8]) {}
    fn u64(&mut self, _: u64) {}
    fn i64(&mut self, _: i64) {}
    fn f64(&mut self, _: f64) {}
    fn str(&mut self, _: &str) {}
}

/// Walks the value at the start of `bytes`, writing its text to `out`; returns its length.
fn walk_prefix(bytes: &[u8], out: &mut impl JsonOut) -> Result<usize, DecodeError> {
    let mut decoder = Decoder { bytes, at: 0 };
    write_item(&mut decoder, 0, out)?;
    Ok(decoder.at)
}

/// Writes the value at the decoder's place, inside `depth` arrays and objects.
fn write_item(
    decoder: &mut Decoder<'_>,
    depth: usize,
    out: &mut impl JsonOut,
) -> Result<(), DecodeError> {
    let start = decoder.at;
    match decoder.token()? {
        Token::Null => out.bytes(b"null"),
        Token::Bool(true) => out.bytes(b"true"),
        Token::Bool(false) => out.bytes(b"false"),
        Token::Unsigned(n) => out.u64(n),
        Token::Negative(n) => out.i64(n),
        Token::Float(x) => out.f64(x),
        Token::Text(text) => out.str(text),
        Token::Array(len) => {
            let depth = decoder.enter_array(len, depth, start)?;
            out.bytes(b"[");
            for item in 0..len {
                if item > 0 {
                    out.bytes(b",");
                }
                write_item(decoder, depth, out)?;
            }
            out.bytes(b"]");
        }
        Token::Object { len, named } => {
            let depth = decoder.enter_object(len, depth, start)?;
            write_object(decoder, len, named, depth, out)?;
        }
    }
    Ok(())
}

/// Writes the object of `len` members (`named`: with common names) whose members start at the
/// decoder's place; its members' values are at `depth`. A name that repeats is refused, as
/// decoding refuses it.
fn write_object<'a>(
    decoder: &mut Decoder<'a>,
    len: usize,
    named: bool,
    depth: usize,
    out: &mut impl JsonOut,
) -> Result<(), DecodeError> {
    // The names met so far: in place for an object of a few members, else in a hash set.
    let mut few = [""; FEW_MEMBERS];
    let mut many = (len > FEW_MEMBERS).then(|| HashSet::with_capacity(len));
    out.bytes(b"{");
    for met in 0..len {
        let name_at = decoder.at;
        let name: &'a str = decoder.member_name(named)?;
        let repeated = match &mut many {
            Some(seen) => !seen.insert(name),
            None => {
                let repeated = few.get(..met).unwrap_or_default().contains(&name);
                if let Some(slot) = few.get_mut(met) {
                    *slot = name;
                }
                repeated
            }
        };
        if repeated {
            return Err(fault(name_at, REPEATED_NAME));
        }
        if met > 0 {
            out.bytes(b",");
        }
        out.str(name);
        out.bytes(b":");
        write_item(decoder, depth, out)?;
    }
    out.bytes(b"}");
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn encoded(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let json_len = encode(value, &mut out).unwrap();
        assert_eq!(json_len, value.to_string().len(), "JSON length of {value}");
        out
    }

    fn round_trip(value: &Value) -> Value {
        let bytes = encoded(value);
        let (decoded, used) = decode_prefix(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        decoded
    }

    fn same(a: &Value, b: &Value) -> bool {
        // Member order and number kinds count: compare the text too.
        a == b && serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
    }

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            "[a-z]{30,140}",
            prop::collection::vec(any::<char>(), 0..8).prop_map(|c| c.into_iter().collect()),
            // Control characters, quotes, backslashes, DEL, and beyond the BMP.
            "[\\x00-\\x1f\"\\\\\\x7f\u{e9}\u{2028}\u{1f600}]{0,8}",
        ]
    }

    fn any_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..300).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-100_000i32..100_000, 0i32..8)
                .prop_map(|(m, k)| Value::from(f64::from(m) / 10f64.powi(k))),
            Just(Value::from(-0.0)),
            Just(Value::from(f64::MIN_POSITIVE)),
            Just(Value::from(f64::MAX)),
            Just(Value::from(5e-324)),
            Just(Value::from(1e300)),
            Just(Value::from(u64::MAX)),
            Just(Value::from(i64::MIN)),
        ]
    }

    /// A common member name, or one that almost is.
    fn common() -> impl Strategy<Value = String> {
        (0..COMMON_NAMES.len(), any::<bool>()).prop_map(|(i, exact)| {
            let name = COMMON_NAMES[i];
            if exact {
                name.to_owned()
            } else {
                format!("{name}_")
            }
        })
    }

    /// Any JSON value, objects of up to 20 members (past the short forms), keys that repeat
    /// across objects and keys out of order, common names among them.
    pub(crate) fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any_number(),
            any_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 20, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
                prop::collection::vec(
                    (prop_oneof!["[a-z]{1,3}", any_string(), common()], inner),
                    0..20
                )
                .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every value comes back exactly: kinds of numbers, float bits, member order.
        #[test]
        fn every_value_round_trips_exactly(value in json()) {
            let back = round_trip(&value);
            prop_assert!(same(&back, &value), "{} came back as {}", value, back);
        }

        /// Floats keep their bits, whichever form they take.
        #[test]
        fn floats_keep_their_bits(float in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let back = round_trip(&Value::from(float));
            prop_assert_eq!(back.as_f64().map(f64::to_bits), Some(float.to_bits()));
        }

        /// Written as text directly, the binary form gives what serializing the decoded value
        /// gives, byte for byte, and takes as many bytes.
        #[test]
        fn the_binary_form_is_written_as_its_value_is(value in json()) {
            let bytes = encoded(&value);
            let mut direct = Vec::new();
            prop_assert_eq!(write_json_prefix(&bytes, &mut direct), Ok(bytes.len()));
            prop_assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }

        /// Whatever the bytes, writing them as text directly and checking them succeed exactly
        /// when decoding does: writing then gives the decoded value's text, and
        /// `decode_checked` the decoded value; when they fail, it is with decoding's fault.
        #[test]
        fn arbitrary_bytes_are_written_and_checked_as_they_decode(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut direct = Vec::new();
            let checked = check_prefix(&bytes);
            match (decode_prefix(&bytes), write_json_prefix(&bytes, &mut direct)) {
                (Ok((value, used)), Ok(written)) => {
                    prop_assert_eq!(written, used);
                    prop_assert_eq!(checked, Ok(used));
                    prop_assert_eq!(direct, serde_json::to_vec(&value).unwrap());
                    prop_assert!(same(&decode_checked(&bytes[..used]), &value));
                }
                (Err(decoding), Err(writing)) => {
                    prop_assert_eq!(&decoding, &writing);
                    prop_assert_eq!(checked, Err(decoding));
                }
                (decoded, direct) => prop_assert!(false, "decoded {:?}, written {:?}", decoded, direct),
            }
        }

        /// Whatever the bytes, decoding returns a value or an error: it never panics, and what it
        /// returns encodes back to a prefix it accepts.
        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((value, used)) = decode_prefix(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert!(same(&round_trip(&value), &value));
            }
        }
    }

    #[test]
    fn short_forms_and_sizes() {
        assert_eq!(encoded(&json!(null)), [NULL]);
        assert_eq!(encoded(&json!(7)), [0x87]);
        assert_eq!(encoded(&json!(128)), [UNSIGNED, 0x80, 0x01]);
        assert_eq!(encoded(&json!(-1)), [NEGATIVE, 0x00]);
        assert_eq!(encoded(&json!("ab")), [0x22, b'a', b'b']);
        assert_eq!(encoded(&json!([])), [SHORT_ARRAY]);
        assert_eq!(encoded(&json!({"a": true})), [0x51, 1, b'a', TRUE]);
        // 0.734 = 734 / 10^3: zigzag(734) = 1468 = 0xbc 0x0b.
        assert_eq!(encoded(&json!(0.734)), [DECIMAL, 0xbc, 0x0b, 3]);
        // 1.0 stays a float, not the integer 1.
        assert_eq!(encoded(&json!(1.0)), [DECIMAL, 0x02, 0]);
        assert_eq!(round_trip(&json!(1.0)).to_string(), "1.0");
        // -0.0 has no decimal form (0 / 1 is +0.0): it keeps its bits.
        assert_eq!(encoded(&json!(-0.0))[0], FLOAT);
        assert_eq!(round_trip(&json!(-0.0)).to_string(), "-0.0");
        let long = "x".repeat(200);
        assert_eq!(encoded(&json!(long))[..3], [STRING, 0xc8, 0x01]);
    }

    /// The bytes of the fuzz seed `crafted-every-tag.bin`, written by hand from the table above.
    #[test]
    fn every_tag_decodes() {
        let seed = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/binary_json_decoder/crafted-every-tag.bin"
        ))
        .unwrap();
        let (value, used) = decode_prefix(&seed).unwrap();
        assert_eq!(used, seed.len());
        let letters: Map<String, Value> =
            ('a'..='p').map(|c| (c.to_string(), Value::Null)).collect();
        let expected = json!({
            "n": null, "f": false, "t": true, "u": 128, "neg": -1, "float": -0.0, "dec": 0.734,
            "long": "x".repeat(32), "arr": (0..16).collect::<Vec<u64>>(), "obj": letters,
            "s": "ok", "e": [],
        });
        assert!(same(&value, &expected), "{value}");
    }

    /// Common names take one byte where they are; other names in the same object keep their
    /// bytes; an object without any keeps the plain form.
    #[test]
    fn common_names_take_one_byte() {
        let named = json!({"model": "m", "x": 1, "usage": {"input_tokens": 3}});
        assert_eq!(
            encoded(&named),
            [0x63, 3, 0x21, b'm', 2, b'x', 0x81, 97, 0x61, 99, 0x83]
        );
        assert!(same(&round_trip(&named), &named));
        let plain = json!({"x": 1});
        assert_eq!(encoded(&plain), [0x51, 1, b'x', 0x81]);
    }

    /// Each common name is found at its place in [`COMMON_NAMES`] (format.rs holds the list to
    /// docs/format.md).
    #[test]
    fn common_names_are_found_at_their_places() {
        for (name, place) in COMMON_NAMES.iter().copied().zip(0u64..) {
            assert_eq!(common_name(name), Some(place));
        }
    }

    #[test]
    fn extremes_round_trip() {
        for value in [
            json!(u64::MAX),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(f64::MAX),
            json!(f64::MIN_POSITIVE),
            json!(1e-7),
            json!(1.5e300),
            json!(0.1 + 0.2),
            json!({"z": 1, "a": 2, "m": {"y": [1, 2.5, "s"], "b": null}}),
            json!("h\u{e9}llo \u{2713} \u{0} \"q\" \\ \t\n\u{7f}\u{1f600}"),
        ] {
            assert!(same(&round_trip(&value), &value), "{value}");
        }
    }

    #[test]
    fn nesting_is_limited_both_ways() {
        let mut deepest = json!([]);
        for _ in 1..MAX_DEPTH {
            deepest = json!([deepest]);
        }
        assert_eq!(round_trip(&deepest), deepest);
        let too_deep = json!({"a": deepest});
        let mut out = vec![9];
        assert_eq!(encode(&too_deep, &mut out), Err(TooDeep));
        assert_eq!(out, [9], "a refused value leaves nothing behind");
        // The same nesting written by hand: one-item arrays, 129 deep.
        let mut bytes = vec![SHORT_ARRAY + 1; MAX_DEPTH];
        bytes.push(SHORT_ARRAY);
        let error = decode_prefix(&bytes).unwrap_err();
        assert_eq!(error.offset, MAX_DEPTH);
        assert!(error.reason.contains("nested deeper"), "{error}");
        // A million levels fail at the limit, not on the stack.
        let bytes = vec![SHORT_ARRAY + 1; 1_000_000];
        assert_eq!(decode_prefix(&bytes).unwrap_err().offset, MAX_DEPTH);
        let writing = write_json_prefix(&bytes, &mut Vec::new()).unwrap_err();
        assert_eq!(writing.offset, MAX_DEPTH);
    }

    #[test]
    fn bad_bytes_name_their_offset() {
        let cases: &[(&[u8], usize, &str)] = &[
            (&[], 0, "truncated"),
            (&[0x0b], 0, "unknown tag 0x0b"),
            (&[0x61, 0x7f, NULL], 1, "unknown common name 63"),
            (&[0x61, 8, b'a'], 1, "truncated"),
            (&[0x62, 67, NULL, 4, b'o', b'p', TRUE], 3, "repeats"),
            (&[0x62, 3, NULL, 3, TRUE], 3, "repeats"),
            (&[0x51, 1, b'a'], 3, "truncated"),
            (&[0x23, b'a', 0xff, b'c'], 2, "not UTF-8"),
            (&[STRING, 0xff, 0xff, 0xff, 0xff, 0x0f], 1, "truncated"),
            (
                &[ARRAY, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                1,
                "truncated",
            ),
            (&[OBJECT, 3, 1, b'a', NULL], 1, "truncated"),
            (
                &[
                    UNSIGNED, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x01,
                ],
                1,
                "64 bits",
            ),
            (
                &[
                    UNSIGNED, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ],
                1,
                "64 bits",
            ),
            (
                &[
                    NEGATIVE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x01,
                ],
                0,
                "below",
            ),
            (&[FLOAT, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f], 0, "not finite"),
            (&[FLOAT, 0, 0], 1, "truncated"),
            (&[DECIMAL, 2, 23], 0, "exponent 23"),
            (&[0x52, 1, b'a', NULL, 1, b'a', TRUE], 4, "repeats"),
            // A repeated name is refused before its value, here truncated, is read.
            (
                &[0x63, 0x37, 0x80, 0x31, 0x80, 0x37, UNSIGNED],
                5,
                "repeats",
            ),
        ];
        for &(bytes, offset, reason) in cases {
            let error = decode_prefix(bytes).unwrap_err();
            assert_eq!(error.offset, offset, "{bytes:?}: {error}");
            assert!(error.reason.contains(reason), "{bytes:?}: {error}");
            // Written as text without decoding, the same bytes fail for the same reason.
            let writing = write_json_prefix(bytes, &mut Vec::new()).unwrap_err();
            assert_eq!(writing, error, "{bytes:?}");
            assert_eq!(check_prefix(bytes).unwrap_err(), error, "{bytes:?}");
        }
    }

    /// A repeated name is found in objects of a few members and of many, wherever it is.
    #[test]
    fn repeated_names_are_refused_in_objects_of_any_size() {
        for len in [2usize, FEW_MEMBERS, FEW_MEMBERS + 1, 40] {
            for repeated in 1..len {
                let mut bytes = vec![OBJECT, len as u8];
                let mut name_at = 0;
                for i in 0..len {
                    if i == repeated {
                        name_at = bytes.len();
                    }
                    let name = if i == repeated { 0 } else { i as u8 };
                    bytes.extend([1, b'A' + name, NULL]);
                }
                let error = decode_prefix(&bytes).unwrap_err();
                assert_eq!(error, fault(name_at, REPEATED_NAME), "{len} {repeated}");
                let writing = write_json_prefix(&bytes, &mut Vec::new()).unwrap_err();
                assert_eq!(writing, error);
            }
        }
    }

    #[test]
    fn the_largest_varints_decode() {
        let bytes = [
            UNSIGNED, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(decode_prefix(&bytes).unwrap().0, json!(u64::MAX));
        let bytes = [
            NEGATIVE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(decode_prefix(&bytes).unwrap().0, json!(i64::MIN));
    }
}
