//! The read path: what a query asks for, which index answers it, and pages with cursors.
//!
//! Results always come in position order (oldest first unless asked otherwise). The planner reads
//! the narrowest index the query names, in this order of preference: intent, trace, types, actor,
//! time; every index entry carries the event's time, type, actor and level, so those filters never
//! read a record. Records are read only for the events returned (and, when a trace is combined
//! with another index, to check the trace).
//!
//! Uses `model::error`, `model::event`, `model::filter`, `model::time`, `engine::format`,
//! `engine::postings`.

use std::collections::BTreeSet;
use std::ops::Range;

use redb::{OwnedAccessGuard, ReadOnlyTable, ReadTransaction, ReadableTable};

use crate::engine::format::{self, Facts, IntentHead, NameKind, BY_TIME, EVENTS, INTENTS, NAMES};
use crate::engine::postings::{self, Code};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::Position;
use crate::model::event::Sequence;
use crate::model::time;

use crate::model::filter::{Cursor, Order, Page, Query};

/// Whether an event passes the query's filters that index rows can answer.
struct FactFilter {
    since: i64,
    until: i64,
    types: Option<BTreeSet<u32>>,
    actor: Option<u32>,
    min_level: u8,
}

impl FactFilter {
    /// Whether every time and level passes (only types and actors may be filtered).
    fn accepts_any_time_and_level(&self) -> bool {
        self.since == i64::MIN && self.until == i64::MAX && self.min_level == 0
    }

    fn accepts(&self, facts: &Facts) -> bool {
        let (micros, type_code, actor_code, level) = *facts;
        micros >= self.since
            && micros < self.until
            && level >= self.min_level
            && self.types.as_ref().is_none_or(|t| t.contains(&type_code))
            && self.actor.is_none_or(|a| a == actor_code)
    }
}

type Candidates = Box<dyn Iterator<Item = Result<(Position, Facts)>>>;

/// Runs `query` in `txn`: at most `limit` events after `after` (in the query's order), no further
/// than `bound` (the last position visible to an iterator that started earlier).
pub(crate) fn execute(
    txn: &ReadTransaction,
    query: &Query,
    after: Option<Position>,
    limit: usize,
    bound: Option<Position>,
) -> Result<Page> {
    let mut events = Vec::with_capacity(limit.min(1024));
    let next = select(txn, query, after, limit, bound, &mut events)?;
    Ok(Page { events, next })
}

/// Where [`select`] puts the records of a page: decoded at once ([`Vec<Event>`]) or kept encoded
/// ([`Records`]).
pub(crate) trait PageOut {
    /// How many records it holds.
    fn len(&self) -> usize;
    /// The position of the last record it holds.
    fn last_position(&self) -> Option<Position>;
    /// Adds the record stored at `position`.
    fn push_record(&mut self, position: Position, record: &[u8]) -> Result<()>;
}

impl PageOut for Vec<Event> {
    fn len(&self) -> usize {
        self.len()
    }

    fn last_position(&self) -> Option<Position> {
        self.last().map(|e| e.position)
    }

    fn push_record(&mut self, position: Position, record: &[u8]) -> Result<()> {
        self.push(format::decode_record(position, record)?);
        Ok(())
    }
}

/// Like [`execute`], but puts the page's records in `out` (which the caller passes empty);
/// returns where the next page starts.
pub(crate) fn select(
    txn: &ReadTransaction,
    query: &Query,
    after: Option<Position>,
    limit: usize,
    bound: Option<Position>,
    out: &mut impl PageOut,
) -> Result<Option<Cursor>> {
    let Some(plan) = Plan::make(txn, query)? else {
        return Ok(None);
    };
    let events_table = txn.open_table(EVENTS)?;
    let forward = query.order == Order::OldestFirst;
    let (low, high) = position_window(forward, after, bound);
    if low > high {
        return Ok(None);
    }
    if matches!(plan.source, Source::Everything) {
        return read_log(&events_table, &plan.facts, forward, low, high, limit, out);
    }
    let candidates = plan.candidates(txn, query, forward, low, high)?;
    let mut more = false;
    for candidate in candidates {
        let (position, facts) = candidate?;
        if position < low || position > high || !plan.facts.accepts(&facts) {
            continue;
        }
        // A page is followed by another only if one more event matches: with a trace to check
        // in the record, that takes reading it.
        if out.len() == limit && plan.check_trace.is_none() {
            more = true;
            break;
        }
        let record = read_record(&events_table, position)?;
        if let Some(trace) = plan.check_trace {
            if format::record_facts(position, record.value())?.trace_id != Some(trace) {
                continue;
            }
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push_record(position, record.value())?;
    }
    Ok(out.last_position().filter(|_| more).map(Cursor))
}

/// The records of a page, still encoded, in the query's order; as an iterator, it decodes each
/// as it is taken. A record that does not decode is not passed over: taking again gives the
/// same error, so that no caller skips an event without knowing.
///
/// An iterator over a long query keeps one of these and refills it page by page: the bytes are
/// read once into the same buffer, and each event is built only just before its caller uses it
/// (and frees it), rather than a whole page of events at once.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// The records' bytes, one after another.
    bytes: Vec<u8>,
    /// Each record's position and where its bytes are in `bytes`.
    spans: Vec<(Position, Range<usize>)>,
    /// How many records have been taken.
    taken: usize,
}

impl Records {
    /// Empties it for the next page, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.taken = 0;
    }

    /// The position of the next record to take.
    pub(crate) fn next_position(&self) -> Option<Position> {
        self.spans.get(self.taken).map(|(position, _)| *position)
    }

    /// Takes the next record, handing its position and bytes to `read`, and returns what `read`
    /// returns; `None` when every record is taken. When `read` fails, the record is not taken.
    pub(crate) fn take_with<T>(
        &mut self,
        read: impl FnOnce(Position, &[u8]) -> Result<T>,
    ) -> Option<Result<T>> {
        let (position, span) = self.spans.get(self.taken)?.clone();
        // Every span lies in `bytes`.
        let record = self.bytes.get(span).unwrap_or_default();
        let result = read(position, record);
        if result.is_ok() {
            self.taken += 1;
        }
        Some(result)
    }
}

impl PageOut for Records {
    /// How many records the page holds, taken or not.
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn last_position(&self) -> Option<Position> {
        self.spans.last().map(|(position, _)| *position)
    }

    fn push_record(&mut self, position: Position, record: &[u8]) -> Result<()> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(record);
        self.spans.push((position, start..self.bytes.len()));
        Ok(())
    }
}

impl Iterator for Records {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        self.take_with(format::decode_record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.spans.len() - self.taken;
        (left, Some(left))
    }
}

/// Reads the record at `position`.
fn read_record(
    events: &ReadOnlyTable<u64, &'static [u8]>,
    position: Position,
) -> Result<OwnedAccessGuard<&'static [u8]>> {
    events.get_owned(position)?.ok_or_else(|| Error::Corrupt {
        position,
        reason: "an index points at it but the record is missing".into(),
    })
}

/// A page straight from the log, for a query no index narrows. The filters left (time, level) are
/// checked on each record's head, and only when the query has them.
fn read_log(
    events_table: &ReadOnlyTable<u64, &'static [u8]>,
    facts: &FactFilter,
    forward: bool,
    low: Position,
    high: Position,
    limit: usize,
    out: &mut impl PageOut,
) -> Result<Option<Cursor>> {
    let range = events_table.range(low..=high)?;
    let rows: Box<dyn Iterator<Item = _>> = if forward {
        Box::new(range)
    } else {
        Box::new(range.rev())
    };
    let filtered = !facts.accepts_any_time_and_level();
    for row in rows {
        let (key, value) = row?;
        let position = key.value();
        let record = value.value();
        if filtered {
            let head = format::record_facts(position, record)?;
            // Codes are not needed: a query with types or an actor never reads the log directly.
            let row_facts = (head.created_at_micros, 0, 0, head.level);
            if !facts.accepts(&row_facts) {
                continue;
            }
        }
        if out.len() == limit {
            return Ok(out.last_position().map(Cursor));
        }
        out.push_record(position, record)?;
    }
    Ok(None)
}

/// The inclusive window of positions still to visit.
fn position_window(
    forward: bool,
    after: Option<Position>,
    bound: Option<Position>,
) -> (Position, Position) {
    let upper = bound.unwrap_or(Position::MAX);
    match (forward, after) {
        (true, Some(p)) => (p.saturating_add(1), upper),
        (false, Some(p)) => (1, p.saturating_sub(1).min(upper)),
        (_, None) => (1, upper),
    }
}

/// Reads and decodes the record at `position`.
pub(crate) fn read_event(
    events: &ReadOnlyTable<u64, &'static [u8]>,
    position: Position,
) -> Result<Event> {
    format::decode_record(position, read_record(events, position)?.value())
}

/// Which index answers a query.
enum Source {
    Intent(IntentHead),
    Trace(u128),
    Types(Vec<u32>),
    Actor(u32),
    Time,
    Everything,
}

struct Plan {
    source: Source,
    facts: FactFilter,
    /// The trace to check in each record, when another index answers a query with a trace.
    check_trace: Option<u128>,
}

impl Plan {
    /// Resolves names to codes and picks the index; `None` when the query cannot match anything
    /// (an unknown intent, type or actor).
    fn make(txn: &ReadTransaction, query: &Query) -> Result<Option<Plan>> {
        let names = txn.open_table(NAMES)?;
        let types = if query.types.is_empty() && query.prefixes.is_empty() {
            None
        } else {
            let mut codes = BTreeSet::new();
            for t in &query.types {
                if let Some(code) = names.get((NameKind::EventType as u8, t.as_str()))? {
                    codes.insert(code.value());
                }
            }
            for prefix in &query.prefixes {
                let kind = NameKind::EventType as u8;
                for entry in names.range((kind, prefix.as_str())..)? {
                    let (key, code) = entry?;
                    let (k, name) = key.value();
                    if k != kind || !name.starts_with(prefix.as_str()) {
                        break;
                    }
                    codes.insert(code.value());
                }
            }
            if codes.is_empty() {
                return Ok(None);
            }
            Some(codes)
        };
        let actor = match &query.actor {
            Some(actor) => match names.get((NameKind::Actor as u8, actor.as_str()))? {
                Some(code) => Some(code.value()),
                None => return Ok(None),
            },
            None => None,
        };
        let trace = match &query.trace_id {
            Some(t) => match format::trace_code(t) {
                Some(code) => Some(code),
                None => return Ok(None),
            },
            None => None,
        };
        let facts = FactFilter {
            since: query.since.map_or(i64::MIN, time::to_micros),
            until: query.until.map_or(i64::MAX, time::to_micros),
            types: types.clone(),
            actor,
            min_level: query.min_level.map_or(0, Level::code),
        };
        let source = if let Some(intent) = &query.intent {
            let intents = txn.open_table(INTENTS)?;
            let Some(head) = intents.get(intent.as_str())? else {
                return Ok(None);
            };
            Source::Intent(IntentHead::decode(head.value(), intent)?)
        } else if let Some(trace) = trace {
            Source::Trace(trace)
        } else if let Some(types) = types {
            Source::Types(types.into_iter().collect())
        } else if let Some(actor) = actor {
            Source::Actor(actor)
        } else if query.since.is_some() || query.until.is_some() {
            Source::Time
        } else {
            Source::Everything
        };
        let check_trace = trace.filter(|_| !matches!(source, Source::Trace(_)));
        Ok(Some(Plan {
            source,
            facts,
            check_trace,
        }))
    }

    /// Candidate rows from the chosen index, in the query's order, starting inside `[low, high]`.
    fn candidates(
        &self,
        txn: &ReadTransaction,
        query: &Query,
        forward: bool,
        low: Position,
        high: Position,
    ) -> Result<Candidates> {
        Ok(match &self.source {
            Source::Intent(head) => {
                let (first, last) = sequence_window(txn, head, query, low, high)?;
                entries(txn, Code::Intent(head.code), first, last, forward)?
            }
            Source::Trace(trace) => entries(txn, Code::Trace(*trace), low, high, forward)?,
            Source::Actor(actor) => entries(txn, Code::Actor(*actor), low, high, forward)?,
            Source::Types(codes) => {
                let mut streams = Vec::with_capacity(codes.len());
                for code in codes {
                    streams.push(entries(txn, Code::Type(*code), low, high, forward)?);
                }
                if streams.len() == 1 {
                    streams
                        .pop()
                        .unwrap_or_else(|| Box::new(std::iter::empty()))
                } else {
                    Box::new(Merge::new(streams, forward))
                }
            }
            Source::Time => {
                let table = txn.open_table(BY_TIME)?;
                let mut rows = Vec::new();
                for row in table.range((self.facts.since, 0)..(self.facts.until, 0))? {
                    let (key, facts) = row?;
                    let position = key.value().1;
                    if position >= low && position <= high && self.facts.accepts(&facts.value()) {
                        rows.push((position, facts.value()));
                    }
                }
                rows.sort_unstable_by_key(|(p, _)| *p);
                if !forward {
                    rows.reverse();
                }
                Box::new(rows.into_iter().map(Ok))
            }
            // `execute` reads the log itself, decoding each record once.
            Source::Everything => Box::new(std::iter::empty()),
        })
    }
}

/// The candidates of one code's index entries ordered within `[low, high]`.
fn entries(
    txn: &ReadTransaction,
    code: Code,
    low: u64,
    high: u64,
    forward: bool,
) -> Result<Candidates> {
    let entries = postings::entries(txn, code, low, high, forward)?;
    Ok(Box::new(
        entries.map(|entry| entry.map(|e| (e.position, e.facts))),
    ))
}

/// The sequences of an intent to visit: the filter's sequence bounds, narrowed to the positions
/// still to visit (sequence order is position order within an intent).
fn sequence_window(
    txn: &ReadTransaction,
    head: &IntentHead,
    query: &Query,
    low: Position,
    high: Position,
) -> Result<(Sequence, Sequence)> {
    let mut first = query.sequence_after.map_or(1, |s| s.saturating_add(1));
    let mut last = query
        .sequence_before
        .map_or(head.last_sequence, |s| s.saturating_sub(1))
        .min(head.last_sequence);
    // Narrow by the cursor: the sequences at the window's edges, found in the intent's index.
    if low > head.first_position {
        if low > head.last_position {
            return Ok((1, 0));
        }
        let at = postings::first_sequence_at_or_after(txn, head.code, head.last_sequence, low)?;
        first = first.max(at);
    }
    if high < head.last_position {
        if high < head.first_position {
            return Ok((1, 0));
        }
        let at = postings::last_sequence_at_or_before(txn, head.code, head.last_sequence, high)?;
        last = last.min(at);
    }
    Ok((first, last))
}

/// Merges position-ordered streams into one position-ordered stream.
struct Merge {
    streams: Vec<Candidates>,
    heads: Vec<Option<Result<(Position, Facts)>>>,
    forward: bool,
}

impl Merge {
    fn new(mut streams: Vec<Candidates>, forward: bool) -> Merge {
        let heads = streams.iter_mut().map(Iterator::next).collect();
        Merge {
            streams,
            heads,
            forward,
        }
    }
}

impl Iterator for Merge {
    type Item = Result<(Position, Facts)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, Position)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            match head {
                Some(Err(_)) => {
                    best = Some((i, 0));
                    break;
                }
                Some(Ok((position, _))) => {
                    let better = best.is_none_or(|(_, b)| {
                        if self.forward {
                            *position < b
                        } else {
                            *position > b
                        }
                    });
                    if better {
                        best = Some((i, *position));
                    }
                }
                None => {}
            }
        }
        let (i, _) = best?;
        let next = self.streams.get_mut(i)?.next();
        std::mem::replace(self.heads.get_mut(i)?, next)
    }
}

/// The event with this id, if stored.
pub(crate) fn event_with_id(txn: &ReadTransaction, id: uuid::Uuid) -> Result<Option<Event>> {
    let by_id = txn.open_table(crate::engine::format::BY_ID)?;
    let Some(position) = by_id.get(id.as_u128())?.map(|g| g.value()) else {
        return Ok(None);
    };
    read_event(&txn.open_table(EVENTS)?, position).map(Some)
}

/// The event at this position, if any.
pub(crate) fn event_at(txn: &ReadTransaction, position: Position) -> Result<Option<Event>> {
    let events = txn.open_table(EVENTS)?;
    let Some(bytes) = events.get(position)? else {
        return Ok(None);
    };
    format::decode_record(position, bytes.value()).map(Some)
}

/// One page of `query`: at most its limit (default [`Query::DEFAULT_PAGE`]) after its cursor.
pub(crate) fn page(txn: &ReadTransaction, query: &Query) -> Result<Page> {
    let limit = query.limit.unwrap_or(Query::DEFAULT_PAGE);
    execute(txn, query, query.after.map(|c| c.0), limit, None)
}
