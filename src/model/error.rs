//! The one error type of oidb, with a variant for every failure a caller may want to match on.
//!
//! Uses `model::amount`.

use std::path::PathBuf;

use uuid::Uuid;

/// A specialised `Result` for oidb operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in oidb.
///
/// Each message says what happened, to what, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or created.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Another handle (in this process or another one) holds the file open for writing.
    #[error(
        "{path} is in use by another process or another Store in this process; \
         close it there first, or share one Store (it is Clone + Send + Sync)"
    )]
    FileInUse {
        /// The file.
        path: PathBuf,
    },

    /// The file was not closed cleanly (the process writing it stopped without closing it), and a
    /// read-only open cannot repair it.
    #[error(
        "{path} was not closed cleanly (the process writing it stopped without closing it); \
         open it once for writing (`Store::open`, or any `oidb` command that writes) to repair it"
    )]
    NeedsRepair {
        /// The file.
        path: PathBuf,
    },

    /// The path a read-only handle was opened on now names another file (a compaction, a copy
    /// or another store put there): what the handle reads is no longer what is at the path.
    #[error(
        "{path} was replaced by another file while this handle read it (by `oidb compact`, a \
         copy or another store); open it again to read what is there now"
    )]
    FileReplaced {
        /// The file.
        path: PathBuf,
    },

    /// Something that must have the file to itself (a format upgrade, a compaction) found other
    /// processes reading it.
    #[error(
        "{path}: {operation} needs the file to itself, but other processes are reading it \
         (`oidb tail -f`, `oidb verify`, a ReadOnlyStore); stop them and try again"
    )]
    FileBeingRead {
        /// The file.
        path: PathBuf,
        /// What needs the file to itself.
        operation: &'static str,
    },

    /// The file exists but is not an oidb store.
    #[error("{path} is not an oidb store: {reason}")]
    NotAnOidbFile {
        /// The file.
        path: PathBuf,
        /// What it looks like instead.
        reason: String,
    },

    /// The file was written by a format version this build does not read.
    #[error(
        "{path} has oidb format version {found}, this build reads version {supported}; \
         open it with a matching version of oidb"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// An event was refused because one of its fields is not valid.
    #[error("invalid event: field `{field}` {reason}")]
    InvalidEvent {
        /// The field at fault (`intent_id`, `payload`, `trace_id`, …).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// An event id is already in the store with different content.
    #[error("event {id} is already in the store with different content ({reason}); ids are unique forever")]
    Conflict {
        /// The event id.
        id: Uuid,
        /// Which field differs.
        reason: String,
    },

    /// An optimistic-concurrency check failed: the intent's last sequence is not what the caller expected.
    #[error(
        "intent {intent_id}: expected its last sequence to be {expected}, but it is {actual}; \
         read the new events and retry"
    )]
    WrongExpectedSequence {
        /// The intent.
        intent_id: String,
        /// The last sequence the caller expected.
        expected: u64,
        /// The intent's actual last sequence.
        actual: u64,
    },

    /// An event carries a sequence or hash chain that does not continue the intent's chain.
    #[error("event {id}: {reason}")]
    ChainMismatch {
        /// The event id.
        id: Uuid,
        /// What does not match.
        reason: String,
    },

    /// Input to an import could not be read. Nothing of that import was written.
    #[error("{source_name} line {line}{}: {reason}; nothing of this import was written", event_id.as_ref().map(|id| format!(" (event {id})")).unwrap_or_default())]
    Import {
        /// Where the input came from (a file name, or "input").
        source_name: String,
        /// The 1-based line (for a JSON array, the line on which the element starts).
        line: usize,
        /// The event id, when it could be read.
        event_id: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// A stored event does not hold the payload a typed reader expected (an `llm_request_*`
    /// event without a `request_id`, say).
    #[error("event {id} ({event_type}) does not hold a {expected} payload: {reason}")]
    UnexpectedPayload {
        /// The event id.
        id: Uuid,
        /// The event's type.
        event_type: String,
        /// What the reader expected (`LlmRequest`, `ToolCall`, …).
        expected: &'static str,
        /// What is wrong with the payload.
        reason: String,
    },

    /// A cost was refused: it would take its intent's spend over the intent's `max_cost` budget.
    /// Nothing of the request that carried it was written; a `governance.violation` event was.
    #[error(
        "intent {intent_id}: a cost of {attempted} {unit} (event {event_id}) would bring its spend \
         from {spent} to {} {unit}, over its max_cost budget of {max_cost} {unit}; the cost was not \
         recorded and a governance.violation event was; raise the budget (Store::set_budget) or stop spending",
        *spent + *attempted
    )]
    BudgetExceeded {
        /// The intent.
        intent_id: String,
        /// The id of the refused event.
        event_id: Uuid,
        /// The budget's unit.
        unit: String,
        /// The budget.
        max_cost: crate::model::amount::Amount,
        /// What the intent had spent before this cost.
        spent: crate::model::amount::Amount,
        /// The refused cost.
        attempted: crate::model::amount::Amount,
    },

    /// A price table is not valid. Nothing of it was stored.
    #[error("invalid price table: {reason}")]
    InvalidPrices {
        /// What is wrong, naming the entry (`models[3] (openai/gpt-4o): …`).
        reason: String,
    },

    /// A trace id is not 32 lowercase hex digits (not all zero), as RFC-0020 and W3C Trace
    /// Context have it.
    #[error("invalid trace id {0:?}: a trace id is 32 lowercase hex digits, not all zero")]
    InvalidTraceId(String),

    /// No checkpoint has this id.
    #[error("no checkpoint {checkpoint_id} in this store; list them with Store::checkpoints")]
    CheckpointNotFound {
        /// The id asked for.
        checkpoint_id: String,
    },

    /// No event has this id.
    #[error("no event {0} in this store")]
    EventNotFound(Uuid),

    /// An event is not among the events a checkpoint covers.
    #[error("event {event_id} is not covered by checkpoint {checkpoint_id}: {reason}")]
    NotInCheckpoint {
        /// The event.
        event_id: Uuid,
        /// The checkpoint.
        checkpoint_id: String,
        /// Why not (another intent, or outside the checkpoint's range).
        reason: String,
    },

    /// The events a checkpoint covers no longer hash to its Merkle root: the log was truncated or
    /// rewritten since the checkpoint was made.
    #[error("checkpoint {checkpoint_id} no longer matches the log: {reason}; run `oidb verify` on the file")]
    CheckpointMismatch {
        /// The checkpoint.
        checkpoint_id: String,
        /// What differs.
        reason: String,
    },

    /// A stored event does not verify where a checkpoint would seal it; nothing was checkpointed.
    #[error("intent {intent_id} sequence {sequence}: {reason}; the log is damaged, run `oidb verify` on the file")]
    ChainBroken {
        /// The intent.
        intent_id: String,
        /// The event's sequence.
        sequence: u64,
        /// What does not verify.
        reason: String,
    },

    /// An event's RFC-0018 proof does not verify; the event was refused.
    #[error("event {id}: invalid signature: {reason}")]
    InvalidSignature {
        /// The event id.
        id: Uuid,
        /// What is wrong with the proof.
        reason: String,
    },

    /// An event by an actor with a registered key came without a proof, and the store requires
    /// signatures; the event was refused.
    #[error(
        "event {id} by {actor} is unsigned, but this store requires signatures from actors with \
         registered keys; sign it with NewEvent::sign"
    )]
    SignatureRequired {
        /// The event id.
        id: Uuid,
        /// The actor, who has a registered key.
        actor: String,
    },

    /// A public key, `did:key` or signature could not be read.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A cursor string could not be read.
    #[error("invalid cursor {0:?}: pass back the cursor a previous page returned")]
    InvalidCursor(String),

    /// A stored record could not be decoded; the file is damaged or was written by other software.
    #[error("record at position {position} is damaged: {reason}; run `oidb verify` on the file")]
    Corrupt {
        /// The position of the record.
        position: u64,
        /// What could not be decoded.
        reason: String,
    },

    /// A consumer acknowledged a position the log has not reached.
    #[error(
        "consumer {consumer:?} cannot acknowledge position {position}: the log ends at {last}"
    )]
    AckBeyondLog {
        /// The consumer.
        consumer: String,
        /// The position acknowledged.
        position: u64,
        /// The last position in the log.
        last: u64,
    },

    /// The store has been closed; open it again to go on.
    #[error("the store is closed; open it again")]
    Closed,

    /// A previous write failed at the storage level; the store refuses writes until it is reopened.
    #[error("a previous write failed ({0}); nothing after it was acknowledged; close and reopen the store")]
    NeedsReopen(String),

    /// The write-ahead log beside the store's file could not be written, read or replayed.
    #[error("write-ahead log {path}: {reason}")]
    Wal {
        /// The log file (the store's path with `-wal` appended).
        path: PathBuf,
        /// What went wrong, and what to do.
        reason: String,
    },

    /// The HTTP server (`oidb serve`, `oidb::server`) cannot listen where it was asked, or failed.
    #[error("cannot serve on {addr}: {reason}")]
    Serve {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why, and what to do.
        reason: String,
    },

    /// Writing output (an export) failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),

    /// The storage engine (redb) failed.
    #[error("storage error: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(err: $t) -> Self {
                Error::Storage(err.into())
            }
        }
    )*};
}

storage_error_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);
