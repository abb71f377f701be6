//! The three sides as logs that take the same events: each turns generated events into its own
//! form (untimed), then writes them, one commit per event or one commit for all (timed).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oidb::{NewEvent, Store};

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

pub struct FloorLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    file: std::fs::File,
    pending: Vec<String>,
}

impl<'w> FloorLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf) -> FloorLog<'w> {
        let file = floor_side::open(&path);
        FloorLog {
            workload,
            path,
            file,
            pending: Vec::new(),
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
            floor_side::append_durable(&self.file, line);
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let lines = std::mem::take(&mut self.pending).concat();
        let start = Instant::now();
        floor_side::append_batch(&self.file, &lines);
        start.elapsed()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// The floor for a log that reuses preallocated space: the lines written one after the other over
/// a file already filled with zeros and synced, `fdatasync` after each.
pub struct InPlaceFloorLog<'w> {
    workload: &'w Workload,
    path: PathBuf,
    file: std::fs::File,
    at: u64,
    pending: Vec<String>,
}

impl<'w> InPlaceFloorLog<'w> {
    pub fn create(workload: &'w Workload, path: PathBuf, len: u64) -> InPlaceFloorLog<'w> {
        let file = floor_side::preallocated(&path, len);
        InPlaceFloorLog {
            workload,
            path,
            file,
            at: 0,
            pending: Vec::new(),
        }
    }
}

impl Log for InPlaceFloorLog<'_> {
    fn prepare(&mut self, events: &[Generated]) {
        self.pending = events.iter().map(|g| self.workload.jsonl_line(g)).collect();
    }

    fn append_each(&mut self) -> Duration {
        let lines = std::mem::take(&mut self.pending);
        let start = Instant::now();
        for line in &lines {
            floor_side::write_durable_at(&self.file, self.at, line);
            self.at += line.len() as u64;
        }
        start.elapsed()
    }

    fn append_all(&mut self) -> Duration {
        let lines = std::mem::take(&mut self.pending).concat();
        let start = Instant::now();
        floor_side::write_durable_at(&self.file, self.at, &lines);
        self.at += lines.len() as u64;
        start.elapsed()
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
