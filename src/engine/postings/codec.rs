//! The block codec: a block's entries packed as LEB128 varints and deltas (docs/format.md,
//! "Postings blocks"), and its decoding, which names the table and key of a damaged block.
//!
//! Of the postings, uses the layout only; reading and writing blocks use it.
//!
//! Uses `model::error`, `engine::postings::layout`.

use crate::engine::postings::layout::{Code, Entry, Index, BLOCK_ENTRIES};
use crate::model::error::Error;
use crate::model::error::Result;

/// Appends `value` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // The low seven bits, with the continuation bit.
        out.push(u8::try_from(value & 0x7f).unwrap_or(0) | 0x80);
        value >>= 7;
    }
    out.push(u8::try_from(value).unwrap_or(0));
}

fn zigzag(value: i64) -> u64 {
    (value.cast_unsigned() << 1) ^ (value >> 63).cast_unsigned()
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1).cast_signed() ^ -((value & 1).cast_signed())
}

/// Appends `entry` to a block of `code`'s index, `previous` being the block's last entry (`None`
/// for its first).
pub(super) fn encode_entry(
    out: &mut Vec<u8>,
    index: Index,
    previous: Option<&Entry>,
    entry: &Entry,
) {
    let (micros, type_code, actor_code, level) = entry.facts;
    match previous {
        None => {
            put_varint(out, entry.position);
            put_varint(out, zigzag(micros));
        }
        Some(previous) => {
            put_varint(out, entry.position.wrapping_sub(previous.position));
            put_varint(out, zigzag(micros.wrapping_sub(previous.facts.0)));
        }
    }
    if index != Index::Type {
        put_varint(out, u64::from(type_code));
    }
    if index != Index::Actor {
        put_varint(out, u64::from(actor_code));
    }
    out.push(level);
    if index == Index::Intent {
        match previous {
            None => put_varint(out, entry.sequence),
            Some(previous) => put_varint(out, entry.sequence.wrapping_sub(previous.sequence)),
        }
    }
}

/// Appends `entry`, following `previous` in a block of `code`'s index: what one more entry adds
/// to a block (for the micro-benchmarks).
#[cfg(feature = "bench-internals")]
pub(crate) fn encode_entry_after(out: &mut Vec<u8>, code: Code, previous: &Entry, entry: &Entry) {
    encode_entry(out, code.index(), Some(previous), entry);
}

/// Encodes `entries` (in order; at most [`BLOCK_ENTRIES`]) as one block of `code`'s index.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encode_block(code: Code, entries: &[Entry]) -> Vec<u8> {
    let index = code.index();
    let mut out = vec![u8::try_from(entries.len()).unwrap_or(u8::MAX)];
    let mut previous = None;
    for entry in entries {
        encode_entry(&mut out, index, previous, entry);
        previous = Some(entry);
    }
    out
}

/// Reads a block's bytes, with the table and key to name when they are damaged.
struct BlockReader<'a> {
    bytes: &'a [u8],
    at: usize,
    code: Code,
    first: u64,
}

impl BlockReader<'_> {
    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupt {
            position: if self.code.index() == Index::Intent {
                0
            } else {
                self.first
            },
            reason: format!(
                "index block {} is damaged: {what} at byte {}",
                self.code.describe(self.first),
                self.at
            ),
        }
    }

    fn byte(&mut self) -> Result<u8> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.corrupt("it ends early"))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(self.corrupt("a number is too large"));
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("a number is too long"))
    }

    fn code_u32(&mut self) -> Result<u32> {
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| self.corrupt("a code is too large"))
    }

    fn grow(&self, previous: u64, delta: u64, what: &str) -> Result<u64> {
        match previous.checked_add(delta) {
            Some(next) if delta > 0 => Ok(next),
            _ => Err(self.corrupt(&format!("{what}s do not rise"))),
        }
    }
}

/// Decodes one block of `code`'s index, stored under key `first` (its first position, or first
/// sequence for intents), into `out` (cleared first).
///
/// # Errors
/// [`Error::Corrupt`] naming the table and key when the bytes are not such a block.
pub(crate) fn decode_block(
    code: Code,
    first: u64,
    bytes: &[u8],
    out: &mut Vec<Entry>,
) -> Result<()> {
    out.clear();
    let index = code.index();
    let mut reader = BlockReader {
        bytes,
        at: 0,
        code,
        first,
    };
    let count = reader.byte()?;
    if count == 0 || usize::from(count) > BLOCK_ENTRIES {
        return Err(reader.corrupt(&format!("it counts {count} entries")));
    }
    let mut previous: Option<Entry> = None;
    for _ in 0..count {
        let (position, micros) = match &previous {
            None => (reader.varint()?, unzigzag(reader.varint()?)),
            Some(p) => {
                let delta = reader.varint()?;
                let position = reader.grow(p.position, delta, "position")?;
                let micros = p.facts.0.wrapping_add(unzigzag(reader.varint()?));
                (position, micros)
            }
        };
        let type_code = match code {
            Code::Type(c) => c,
            _ => reader.code_u32()?,
        };
        let actor_code = match code {
            Code::Actor(c) => c,
            _ => reader.code_u32()?,
        };
        let level = reader.byte()?;
        let sequence = match (index, &previous) {
            (Index::Intent, None) => reader.varint()?,
            (Index::Intent, Some(p)) => {
                let delta = reader.varint()?;
                reader.grow(p.sequence, delta, "sequence")?
            }
            _ => 0,
        };
        let entry = Entry {
            position,
            sequence,
            facts: (micros, type_code, actor_code, level),
        };
        if previous.is_none() && entry.order(index) != first {
            return Err(reader.corrupt(&format!(
                "its first entry is at {}, not at its key",
                entry.order(index)
            )));
        }
        out.push(entry);
        previous = Some(entry);
    }
    if reader.at != bytes.len() {
        return Err(reader.corrupt(&format!(
            "{} bytes follow its entries",
            bytes.len() - reader.at
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, sequence: u64, micros: i64, type_code: u32, actor_code: u32) -> Entry {
        Entry {
            position,
            sequence,
            facts: (micros, type_code, actor_code, 2),
        }
    }

    /// `entries` as `code`'s index holds them: the key's type or actor in place of the entry's.
    fn as_stored(code: Code, entries: &[Entry]) -> Vec<Entry> {
        entries
            .iter()
            .map(|e| {
                let mut e = *e;
                match code {
                    Code::Type(c) => e.facts.1 = c,
                    Code::Actor(c) => e.facts.2 = c,
                    Code::Intent(_) | Code::Trace(_) => {}
                }
                if code.index() != Index::Intent {
                    e.sequence = 0;
                }
                e
            })
            .collect()
    }

    fn decoded(code: Code, first: u64, bytes: &[u8]) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        decode_block(code, first, bytes, &mut out)?;
        Ok(out)
    }

    #[test]
    fn blocks_read_back_at_the_extremes_of_every_field() {
        let entries = [
            Entry {
                position: 0,
                sequence: 0,
                facts: (i64::MIN, u32::MAX, 0, u8::MAX),
            },
            Entry {
                position: 1,
                sequence: 1,
                facts: (i64::MAX, 0, u32::MAX, 0),
            },
            Entry {
                position: u64::MAX - 1,
                sequence: u64::MAX - 1,
                facts: (i64::MIN, 7, 7, 1),
            },
            Entry {
                position: u64::MAX,
                sequence: u64::MAX,
                facts: (0, 7, 7, 1),
            },
        ];
        for code in [
            Code::Intent(u64::MAX),
            Code::Type(u32::MAX),
            Code::Actor(0),
            Code::Trace(u128::MAX),
        ] {
            let stored = as_stored(code, &entries);
            let bytes = encode_block(code, &stored);
            assert_eq!(decoded(code, 0, &bytes).unwrap(), stored, "{code:?}");
        }
    }

    #[test]
    fn a_type_entry_of_nearby_events_takes_a_few_bytes() {
        let code = Code::Type(3);
        let entries: Vec<Entry> = (0..BLOCK_ENTRIES as u64)
            .map(|i| {
                entry(
                    1_000_000 + i * 5,
                    0,
                    1_790_000_000_000_000 + 1_000 * i.cast_signed(),
                    3,
                    9,
                )
            })
            .collect();
        let bytes = encode_block(code, &entries);
        // Count; first entry: position 3, time 8, actor 1, level 1; then 1 + 2 + 1 + 1.
        assert_eq!(bytes.len(), 1 + 13 + 5 * (BLOCK_ENTRIES - 1));
        assert_eq!(decoded(code, 1_000_000, &bytes).unwrap(), entries);
    }

    #[test]
    fn damaged_blocks_are_corrupt_and_name_their_table_and_key() {
        let code = Code::Actor(4);
        let entries: Vec<Entry> = (1..=5)
            .map(|i| entry(i * 3, 0, i.cast_signed(), 2, 4))
            .collect();
        let bytes = encode_block(code, &entries);
        let reason = |result: Result<Vec<Entry>>| match result {
            Err(Error::Corrupt { reason, .. }) => reason,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        for len in 0..bytes.len() {
            let why = reason(decoded(code, 3, &bytes[..len]));
            assert!(why.contains("actor_postings (4, 3)"), "{why}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(reason(decoded(code, 3, &longer)).contains("1 bytes follow its entries"));
        assert!(reason(decoded(code, 4, &bytes)).contains("not at its key"));
        let mut zero = bytes.clone();
        zero[0] = 0;
        assert!(reason(decoded(code, 3, &zero)).contains("counts 0 entries"));
        // A zero delta: positions that do not rise. Count, then position, time, type and level
        // of the first entry, a byte each; then the second's position delta.
        let mut flat = encode_block(code, &entries[..2]);
        flat[5] = 0;
        assert!(reason(decoded(code, 3, &flat)).contains("positions do not rise"));
        assert!(reason(decoded(
            code,
            3,
            &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        ))
        .contains("too large"));
        for at in 0..bytes.len() {
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] = byte;
                match decoded(code, 3, &changed) {
                    Ok(_) | Err(Error::Corrupt { .. }) => {}
                    Err(other) => panic!("byte {at} = {byte:#x}: {other}"),
                }
            }
        }
    }
}
