//! The sides as logs that take the same events: each turns generated events into its own
//! form (untimed), then writes them, one commit per event or one commit for all (timed).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oidb::{NewEvent, Store};

use crate::fjall_side::{self, Fjall};
use crate::floor_side;
use crate::sqlite_side::{self, Synchronous};
use crate::workload::{Generated, Workload};

pub trait Log {
    /// Turns `events` into what the side writes; not timed.
    fn prepare(&mut self, events: &[Generated]);
    /// Writes the prepared events, each in its own durable commit; returns the time it took.
    fn append_each(&mut self) -> Duration;
    /// Writes the prepared events in one commit; returns the time it took.
    fn append_all(&mut self) -> Duration;
    /// The file (or main file) the log is in.
    fn path(&self) -> &Path;
    /// The names of the threads the side runs on its own (besides the caller's), whose CPU
    /// time counts as the side's whenever it is spent.
    fn background_threads(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct OidbLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    store: Store,
    pending: Vec<NewEvent>,
}

impl<'w> OidbLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf) -> OidbLog<'w> {
        let store = Store::open(&path).expect("open store");
        OidbLog {
            workload,
            path,
            store,
            pending: Vec::new(),
        }
    }
}

impl Log for OidbLog<'_> {
    fn prepare(&mut self, events: &[Generated]) {
        self.pending = events.iter().map(|g| self.workload.new_event(g)).collect();
    }

    fn append_each(&mut self) -> Duration {
        let events = std::mem::take(&mut self.pending);
        let start = Instant::now();
        for event in events {
            self.store.append(event).expect("append");
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let events = std::mem::take(&mut self.pending);
        let start = Instant::now();
        self.store.append_batch(events).expect("append batch");
        start.elapsed()
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn background_threads(&self) -> &'static [&'static str] {
        &["oidb-publisher"]
    }
}

pub struct SqliteLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    conn: rusqlite::Connection,
    pending: Vec<sqlite_side::Row<'w>>,
}

impl<'w> SqliteLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf, synchronous: Synchronous) -> Self {
        let conn = sqlite_side::open(&path, synchronous);
        SqliteLog {
            workload,
            path,
            conn,
            pending: Vec::new(),
        }
    }
}

impl Log for SqliteLog<'_> {
    fn prepare(&mut self, events: &[Generated]) {
        self.pending = events
            .iter()
            .map(|g| sqlite_side::row(self.workload, g))
            .collect();
    }

    fn append_each(&mut self) -> Duration {
        let rows = std::mem::take(&mut self.pending);
        let start = Instant::now();
        for row in &rows {
            sqlite_side::append_one(&self.conn, row);
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let rows = std::mem::take(&mut self.pending);
        let start = Instant::now();
        sqlite_side::append_batch(&mut self.conn, &rows);
        start.elapsed()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

pub struct FjallLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    db: Fjall,
    pending: Vec<fjall_side::Row<'w>>,
}

impl<'w> FjallLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf) -> Self {
        let db = Fjall::open(&path);
        FjallLog {
            workload,
            path,
            db,
            pending: Vec::new(),
        }
    }
}

impl Log for FjallLog<'_> {
    fn prepare(&mut self, events: &[Generated]) {
        self.pending = events
            .iter()
            .map(|g| fjall_side::row(self.workload, g))
            .collect();
    }

    fn append_each(&mut self) -> Duration {
        let rows = std::mem::take(&mut self.pending);
        let start = Instant::now();
        for row in &rows {
            self.db.append(std::slice::from_ref(row), true);
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let rows = std::mem::take(&mut self.pending);
        let start = Instant::now();
        self.db.append(&rows, true);
        start.elapsed()
    }

    /// The database's directory.
    fn path(&self) -> &Path {
        &self.path
    }

    fn background_threads(&self) -> &'static [&'static str] {
        &["fjall:worker"]
    }
}

/// The floor: the lines appended to a plain file or, when made with
/// [`FloorLog::preallocated`], written one after the other over a file already filled with zeros
/// and synced (what a log that reuses preallocated space does); `fdatasync` where the sides commit.
pub struct FloorLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    file: std::fs::File,
    /// Where the next line goes in a preallocated file; `None` when appending.
    at: Option<u64>,
    pending: Vec<String>,
}

impl<'w> FloorLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf) -> FloorLog<'w> {
        let file = floor_side::open(&path);
        FloorLog {
            workload,
            path,
            file,
            at: None,
            pending: Vec::new(),
        }
    }

    pub fn preallocated(workload: &'w Workload, path: PathBuf, len: u64) -> FloorLog<'w> {
        let file = floor_side::preallocated(&path, len);
        FloorLog {
            workload,
            path,
            file,
            at: Some(0),
            pending: Vec::new(),
        }
    }

    fn write_durable(&mut self, lines: &str) {
        match &mut self.at {
            Some(at) => {
                floor_side::write_durable_at(&self.file, *at, lines);
                *at += lines.len() as u64;
            }
            None => floor_side::append_durable(&self.file, lines),
        }
    }
}

impl Log for FloorLog<'_> {
    fn prepare(&mut self, events: &[Generated]) {
        self.pending = events.iter().map(|g| self.workload.jsonl_line(g)).collect();
    }

    fn append_each(&mut self) -> Duration {
        let lines = std::mem::take(&mut self.pending);
        let start = Instant::now();
        for line in &lines {
            self.write_durable(line);
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let lines = std::mem::take(&mut self.pending).concat();
        let start = Instant::now();
        self.write_durable(&lines);
        start.elapsed()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
