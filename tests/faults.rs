//! Fault injection: a storage backend that fails a write, a `sync_data` or a file extension after
//! N operations, with an I/O error or "no space left on device". Appends must fail with a clear
//! error and never panic; nothing acknowledged may be lost once the file is reopened; and the
//! store must say plainly that it has to be reopened.

mod invariants;

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oidb::{Durability, Error, Event, EventType, NewEvent, Store};
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use serde_json::json;

/// The backend operation a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    SyncData,
    /// Growing the file (`set_len` to a larger size): where a full disk shows first.
    Grow,
}

/// What the failing operation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// EIO: a failing disk or a yanked device.
    Io,
    /// ENOSPC: no space left on device.
    NoSpace,
}

impl Failure {
    fn error(self) -> std::io::Error {
        match self {
            Failure::Io => std::io::Error::from_raw_os_error(5),
            Failure::NoSpace => std::io::Error::from_raw_os_error(28),
        }
    }
}

/// When and how the backend fails; shared with the test that watches it.
#[derive(Debug)]
struct FaultPlan {
    op: Op,
    failure: Failure,
    /// Operations of kind `op` still allowed before the fault, counted once armed.
    remaining: AtomicU64,
    armed: AtomicBool,
    /// How many operations failed.
    injected: AtomicU64,
    /// Operations of each kind seen while armed (to size the sweeps).
    seen: AtomicU64,
}

impl FaultPlan {
    fn new(op: Op, failure: Failure, after: u64) -> Arc<FaultPlan> {
        Arc::new(FaultPlan {
            op,
            failure,
            remaining: AtomicU64::new(after),
            armed: AtomicBool::new(false),
            injected: AtomicU64::new(0),
            seen: AtomicU64::new(0),
        })
    }

    /// Whether this operation fails. Once the fault has struck, every later operation of the
    /// same kind fails too, as on a full or dead disk.
    fn strikes(&self, op: Op) -> Result<(), std::io::Error> {
        if op != self.op || !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        let allowed = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if allowed {
            Ok(())
        } else {
            self.injected.fetch_add(1, Ordering::SeqCst);
            Err(self.failure.error())
        }
    }
}

/// A redb file backend that fails as its [`FaultPlan`] says.
#[derive(Debug)]
struct FaultyBackend {
    file: FileBackend,
    plan: Arc<FaultPlan>,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if len > self.file.len()? {
            self.plan.strikes(Op::Grow)?;
        }
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.plan.strikes(Op::SyncData)?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.plan.strikes(Op::Write)?;
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

fn open_faulty(path: &Path, plan: &Arc<FaultPlan>, durability: Durability) -> oidb::Result<Store> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let backend = FaultyBackend {
        file: FileBackend::new(file).unwrap(),
        plan: Arc::clone(plan),
    };
    Store::builder()
        .durability(durability)
        .open_backend(backend, &path.display().to_string())
}

const SEED_EVENTS: usize = 40;
const THREADS: usize = 3;
const APPENDS_PER_THREAD: usize = 12;
/// Payload text per event: enough for the workload (about 2 MB) to grow the file.
const TEXT_BYTES: usize = 16_000;

/// A store with some history, closed cleanly.
fn seeded_store(path: &Path) -> Vec<Event> {
    let store = Store::open(path).unwrap();
    store
        .append_batch((0..SEED_EVENTS).map(|i| {
            NewEvent::new(format!("intent-{}", i % 4), EventType::Comment, "seed")
                .payload(json!({"seed": i, "text": "y".repeat(i * 7)}))
        }))
        .unwrap()
}

/// What a run under a fault saw.
struct Run {
    acknowledged: Vec<Event>,
    errors: Vec<Error>,
    injected: u64,
    seen: u64,
}

/// Appends from several threads (single events and small batches) under `plan`, then drops the
/// store. Every error must be a clear one; none may be a panic.
fn appends_under_fault(path: &Path, plan: &Arc<FaultPlan>, durability: Durability) -> Run {
    let store = open_faulty(path, plan, durability).expect("opens before the fault is armed");
    plan.armed.store(true, Ordering::SeqCst);
    let acknowledged = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (store, acknowledged, errors) = (&store, &acknowledged, &errors);
            scope.spawn(move || {
                for i in 0..APPENDS_PER_THREAD {
                    let event = |k: usize| {
                        NewEvent::new(format!("intent-{}", (thread + i + k) % 5), EventType::Comment, format!("writer-{thread}"))
                            .payload(json!({"thread": thread, "i": i, "k": k, "text": "z".repeat(TEXT_BYTES * (k + 1) + i)}))
                    };
                    let result = if i % 3 == 2 {
                        store.append_batch((0..3).map(event))
                    } else {
                        store.append(event(0)).map(|e| vec![e])
                    };
                    match result {
                        Ok(events) => acknowledged.lock().unwrap().extend(events),
                        Err(error) => errors.lock().unwrap().push(error),
                    }
                }
            });
        }
    });
    // Reads after a fault answer, with an error or with data; they never panic.
    let _ = store.last_position();
    let _ = store.query(&oidb::Query::new().limit(5));
    if matches!(durability, Durability::Deferred { .. }) {
        if let Err(error) = store.flush() {
            errors.lock().unwrap().push(error);
        }
    }
    drop(store);
    Run {
        acknowledged: acknowledged.into_inner().unwrap(),
        errors: errors.into_inner().unwrap(),
        injected: plan.injected.load(Ordering::SeqCst),
        seen: plan.seen.load(Ordering::SeqCst),
    }
}

/// After a fault: every error is plain, the file reopens, holds everything acknowledged byte
/// for byte, is consistent, and takes appends again.
fn check_after_fault(path: &Path, seed: &[Event], run: &Run, what: &str) {
    for error in &run.errors {
        let message = error.to_string();
        assert!(
            matches!(error, Error::NeedsReopen(_)),
            "{what}: a failed append says the store must be reopened, got: {message}"
        );
        assert!(message.contains("reopen"), "{what}: {message}");
    }
    if run.injected > 0 {
        assert!(
            !run.errors.is_empty()
                || run.acknowledged.len() == THREADS * APPENDS_PER_THREAD / 3 * 5,
            "{what}: a fault struck but no append failed"
        );
    }
    let store =
        Store::open(path).unwrap_or_else(|e| panic!("{what}: the file does not reopen: {e}"));
    let events = invariants::assert_consistent(&store);
    for expected in seed.iter().chain(&run.acknowledged) {
        let stored = events
            .get(expected.position as usize - 1)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: acknowledged event at {} is lost",
                    expected.position
                )
            });
        assert_eq!(
            serde_json::to_vec(stored).unwrap(),
            serde_json::to_vec(expected).unwrap(),
            "{what}: acknowledged event at {} changed",
            expected.position
        );
    }
    let after = store
        .log_event("intent-after", EventType::Comment, json!({"after": what}))
        .unwrap_or_else(|e| panic!("{what}: appending after reopening fails: {e}"));
    assert_eq!(after.position, events.len() as u64 + 1);
}

/// Runs the workload once without faults to count the operations of `op` it makes.
fn operations_in_workload(op: Op, durability: Durability) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count.oidb");
    seeded_store(&path);
    let plan = FaultPlan::new(op, Failure::Io, u64::MAX);
    let run = appends_under_fault(&path, &plan, durability);
    assert!(run.errors.is_empty());
    run.seen
}

/// Injects `failure` at `op` after 0, 1, 2, … operations, across the whole workload.
fn sweep(op: Op, failure: Failure, durability: Durability) -> (u64, u64) {
    let total = operations_in_workload(op, durability);
    assert!(total > 0, "the workload makes no {op:?} operation");
    let step = (total / 24).max(1);
    let mut cases = 0;
    let mut injected = 0;
    let mut struck = 0;
    let dir = tempfile::tempdir().unwrap();
    for after in (0..total).step_by(step as usize) {
        let path = dir.path().join(format!("{op:?}-{failure:?}-{after}.oidb"));
        let seed = seeded_store(&path);
        let plan = FaultPlan::new(op, failure, after);
        let run = appends_under_fault(&path, &plan, durability);
        let what =
            format!("{op:?} failing with {failure:?} after {after} of {total} ({durability:?})");
        check_after_fault(&path, &seed, &run, &what);
        cases += 1;
        injected += run.injected;
        struck += u64::from(run.injected > 0);
    }
    // Group commit makes the count vary a little from run to run, so a fault planned near the
    // end of the workload may not strike; with few such operations that is a large share.
    assert!(
        struck > 0 && struck * 2 >= cases,
        "the fault struck in only {struck} of {cases} runs"
    );
    eprintln!("{op:?}/{failure:?}/{durability:?}: {cases} runs, {injected} failed operations, {total} operations in the workload");
    (cases, injected)
}

#[test]
fn a_failing_write_loses_nothing_acknowledged() {
    sweep(Op::Write, Failure::Io, Durability::Immediate);
}

#[test]
fn a_failing_sync_loses_nothing_acknowledged() {
    sweep(Op::SyncData, Failure::Io, Durability::Immediate);
}

#[test]
fn a_full_disk_loses_nothing_acknowledged() {
    sweep(Op::Grow, Failure::NoSpace, Durability::Immediate);
    sweep(Op::Write, Failure::NoSpace, Durability::Immediate);
}

#[test]
fn a_full_disk_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.oidb");
    seeded_store(&path);
    let plan = FaultPlan::new(Op::Write, Failure::NoSpace, 0);
    let run = appends_under_fault(&path, &plan, Durability::Immediate);
    assert!(run.acknowledged.is_empty());
    let first = run
        .errors
        .first()
        .expect("appends fail on a full disk")
        .to_string();
    assert!(first.contains("No space left on device"), "{first}");
    assert!(first.contains("reopen"), "{first}");
}

#[test]
fn a_failed_deferred_flush_says_what_may_be_lost_and_keeps_what_was_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deferred.oidb");
    let seed = seeded_store(&path);
    let plan = FaultPlan::new(Op::SyncData, Failure::Io, 0);
    let deferred = Durability::Deferred {
        window: std::time::Duration::from_secs(3600),
    };
    let store = open_faulty(&path, &plan, deferred).unwrap();
    let append = |i: usize| store.log_event("intent-deferred", EventType::Comment, json!({"i": i}));
    let flushed: Vec<Event> = (0..10).map(|i| append(i).unwrap()).collect();
    store.flush().unwrap();
    plan.armed.store(true, Ordering::SeqCst);
    let unflushed: Vec<Event> = (10..20).map(|i| append(i).unwrap()).collect();
    let error = store.flush().expect_err("the flush's sync fails");
    let message = error.to_string();
    assert!(matches!(error, Error::NeedsReopen(_)), "{message}");
    assert!(
        message.contains("may be lost") && message.contains("reopen"),
        "{message}"
    );
    let refused = append(20).expect_err("no append after a failed flush");
    assert!(matches!(refused, Error::NeedsReopen(_)), "{refused}");
    drop(store);

    let store = Store::open(&path).unwrap();
    let events = invariants::assert_consistent(&store);
    for expected in seed.iter().chain(&flushed) {
        assert_eq!(
            events.get(expected.position as usize - 1),
            Some(expected),
            "a flushed event is lost"
        );
    }
    // The unflushed ones may be there or not, but only whole and in order.
    let kept = events.len() - seed.len() - flushed.len();
    assert_eq!(&events[seed.len() + flushed.len()..], &unflushed[..kept]);
}

#[test]
fn a_fault_while_opening_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut refused = 0;
    for op in [Op::Write, Op::SyncData] {
        for after in 0..6 {
            let path = dir.path().join(format!("open-{op:?}-{after}.oidb"));
            let seed = seeded_store(&path);
            let plan = FaultPlan::new(op, Failure::Io, after);
            plan.armed.store(true, Ordering::SeqCst);
            match open_faulty(&path, &plan, Durability::Immediate) {
                Ok(store) => {
                    // The fault may strike at the first append instead.
                    if let Err(error) = store.log_event("intent", EventType::Comment, json!({})) {
                        assert!(matches!(error, Error::NeedsReopen(_)), "{error}");
                    }
                }
                Err(error) => {
                    refused += 1;
                    let message = error.to_string();
                    assert!(message.contains(&path.display().to_string()), "{message}");
                    assert!(message.contains("Input/output error"), "{message}");
                }
            }
            let store = Store::open(&path).unwrap();
            let events = invariants::assert_consistent(&store);
            assert_eq!(&events[..seed.len()], &seed[..]);
        }
    }
    eprintln!("{refused} of 12 faulty opens refused");
}
