//! The write-ahead log beside a store's file: how an append under
//! [`Durability::Immediate`](crate::Durability::Immediate) reaches the disk with one sequential
//! write and one `fdatasync`.
//!
//! A durable redb commit writes every page it changed and the path to the root of every tree it
//! changed, scattered over the file: about 26 pages for one event and its indexes. So the writer
//! commits to redb without syncing ([`redb::Durability::None`]) and makes the commit durable by
//! appending its new records to this log and syncing that instead. Every so often (when the log
//! is full, on [`Store::flush`](crate::Store::flush), and when the store closes) a durable redb
//! commit makes everything in the file durable and the log starts over; a clean close removes it.
//!
//! After a crash, redb comes back at its last durable commit, and the log holds every record
//! committed since: opening the store replays them (checking each event's hash chain as an
//! import would) before anything else happens. The layout is in `docs/format.md`.
//!
//! The log is written over space already filled with zeros and synced, so that a sync has no
//! block allocation or file length to record: growing it is done ahead, a megabyte at a time.
//!
//! Syncing is done by whoever waits for an entry: the writer writes an entry, goes on (applying
//! the entry's rows, committing, letting the next group in), then waits for it to be durable
//! ([`Sync::wait_durable`]). The first waiter to find no sync running syncs the file on its own
//! thread; the others wait for that sync, and one of them starts the next if theirs was written
//! after it began. One sync covers every entry written before it started, so entries written
//! while the disk is busy share the next one. A lone append thus syncs on its caller's thread,
//! without handing the entry to another thread and the answer back: on a virtual machine those
//! two wake-ups cost more than the overlap of a sync with the entry's rows gained.
//!
//! Uses `model::error`, `model::event`.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};
use sha2::{Digest, Sha256};

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;

/// The first bytes of a log file.
const MAGIC: &[u8; 16] = b"oidb-wal\0\0\0\0\0\0\0\x01";
/// The header: magic, the length of the store id, the store id, zeros.
const HEADER_LEN: u64 = 64;
/// The most bytes of store id the header holds.
const MAX_STORE_ID: usize = HEADER_LEN as usize - MAGIC.len() - 1;
/// The first bytes of every entry.
const ENTRY_MAGIC: [u8; 4] = *b"OIWE";
/// An entry's header: magic, body length, first position, record count, checksum.
const ENTRY_HEADER_LEN: usize = 4 + 4 + 8 + 4 + CHECKSUM_LEN;
/// Bytes of SHA-256 kept as an entry's checksum.
const CHECKSUM_LEN: usize = 16;
/// The log starts over (after a durable commit of the file) before it grows past this: about
/// 6,000 events of 600 bytes, which bounds the replay after a crash to a fraction of a second.
pub(crate) const CAPACITY: u64 = 4 << 20;
/// How much zeroed space is added at a time.
const GROWTH: u64 = 1 << 20;
/// Added to a log's name when it is kept aside as damaged.
const DAMAGED_SUFFIX: &str = ".damaged";

/// A record read back from the log, with its position.
pub(crate) type LoggedRecord = (Position, Vec<u8>);

/// An entry read back: its first position, its records, and the bytes after it.
type Entry<'a> = (Position, Vec<&'a [u8]>, &'a [u8]);

/// The log's path for a store at `store`: the same name with `-wal` appended.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The log's path for the store file at `store`, which exists: beside the file itself, wherever
/// `store` was named from. A relative path would follow the process's working directory when it
/// changes, and a symbolic link would put the log beside the link, where opening the file by its
/// own name would not find it.
///
/// # Errors
/// [`Error::Open`] when the file's real path cannot be found.
pub(crate) fn path_beside(store: &Path) -> Result<PathBuf> {
    let real = std::fs::canonicalize(store).map_err(|source| Error::Open {
        path: store.to_path_buf(),
        source,
    })?;
    Ok(path_for(&real))
}

/// The number of an entry written to the log, counted from 1 since the log was created:
/// entries are durable up to some ticket.
pub(crate) type Ticket = u64;

/// An open log, written by the store's writer only.
pub(crate) struct Wal {
    file: Arc<File>,
    path: PathBuf,
    /// Where the next entry goes.
    end: u64,
    /// How far the file is written (header, entries, zeros).
    filled: u64,
    /// The entry being built, reused.
    buffer: Vec<u8>,
    /// The last entry written.
    written: Ticket,
    sync: Sync,
}

impl Wal {
    /// Creates the log for the store `store_id` at `path`, its header and directory entry on
    /// disk. A file already there is left alone: the store replayed and removed its own log when
    /// it opened, so one found now was put there by something else, and may be all it has.
    pub(crate) fn create(path: &Path, store_id: &str) -> Result<Wal> {
        let error = |e: std::io::Error| wal_error(path, &e.to_string());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => wal_error(
                    path,
                    "appeared after the store opened, and this store did not write it; it is \
                     left as it is: close the store, then look at what wrote it",
                ),
                std::io::ErrorKind::PermissionDenied => wal_error(
                    path,
                    &format!(
                        "cannot be created ({e}): a store appended to with \
                         Durability::Immediate writes its log beside its file, so their \
                         directory must be writable"
                    ),
                ),
                _ => error(e),
            })?;
        let file = Arc::new(file);
        let header = header(store_id).ok_or_else(|| wal_error(path, "the store id is too long"))?;
        file.write_all_at(&header, 0).map_err(error)?;
        let mut filled = HEADER_LEN;
        grow(&file, &mut filled, HEADER_LEN + GROWTH).map_err(error)?;
        file.sync_data().map_err(error)?;
        sync_directory(path).map_err(error)?;
        let sync = Sync::new(Arc::clone(&file));
        Ok(Wal {
            file,
            path: path.to_path_buf(),
            end: HEADER_LEN,
            filled,
            buffer: Vec::new(),
            written: 0,
            sync,
        })
    }

    /// Whether an entry of `records` fits before the log reaches [`CAPACITY`].
    pub(crate) fn has_room_for(&self, records: &[&[u8]]) -> bool {
        self.end + entry_len(records) as u64 <= CAPACITY
    }

    /// Writes one entry holding `records` (at positions from `first` on), unsynced;
    /// [`Sync::wait_durable`] with the ticket returned makes it durable and waits until it is.
    pub(crate) fn write(&mut self, first: Position, records: &[&[u8]]) -> Result<Ticket> {
        encode_entry(&mut self.buffer, first, records)?;
        let end = self.end + self.buffer.len() as u64;
        if end > self.filled {
            let to = end.max(self.filled + GROWTH);
            grow(&self.file, &mut self.filled, to)
                .map_err(|e| wal_error(&self.path, &e.to_string()))?;
        }
        self.file
            .write_all_at(&self.buffer, self.end)
            .map_err(|e| wal_error(&self.path, &e.to_string()))?;
        self.end = end;
        self.written += 1;
        self.sync.written(self.written);
        Ok(self.written)
    }

    /// The last entry written (0 before the first).
    pub(crate) fn written(&self) -> Ticket {
        self.written
    }

    /// What tells when entries are durable; it can be waited on without the log.
    pub(crate) fn sync(&self) -> &Sync {
        &self.sync
    }

    /// Starts the log over: call only once everything in it is durable in the store's file
    /// (which makes every entry written so far durable, as far as waiters are concerned). The
    /// old entries stay until overwritten; replay tells them apart by their positions.
    pub(crate) fn restart(&mut self) {
        self.end = HEADER_LEN;
        self.sync.durable_through(self.written);
    }

    /// Removes the log: call only once everything in it is durable in the store's file.
    pub(crate) fn remove(self) -> Result<()> {
        self.sync.stop();
        std::fs::remove_file(&self.path).map_err(|e| wal_error(&self.path, &e.to_string()))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.sync.stop();
    }
}

/// Fills `file` with zeros from `filled` up to `to`, unsynced (the next sync covers it).
fn grow(file: &File, filled: &mut u64, to: u64) -> std::io::Result<()> {
    static CHUNK: [u8; 64 << 10] = [0; 64 << 10];
    while *filled < to {
        let n = usize::try_from((to - *filled).min(CHUNK.len() as u64)).unwrap_or(CHUNK.len());
        file.write_all_at(CHUNK.get(..n).unwrap_or(&CHUNK), *filled)?;
        *filled += n as u64;
    }
    Ok(())
}

/// How far the log's entries are durable, and the file that syncs them: shared by the writer and
/// whoever waits.
#[derive(Clone)]
pub(crate) struct Sync {
    shared: Arc<SyncShared>,
}

struct SyncShared {
    file: Arc<File>,
    state: Mutex<SyncState>,
    changed: Condvar,
}

#[derive(Default)]
struct SyncState {
    written: Ticket,
    durable: Ticket,
    /// Why a sync failed: no entry after the last durable one will ever be, as far as this
    /// process can tell.
    failed: Option<String>,
    stopping: bool,
    /// A waiter is syncing the file now.
    syncing: bool,
}

impl Sync {
    fn new(file: Arc<File>) -> Sync {
        Sync {
            shared: Arc::new(SyncShared {
                file,
                state: Mutex::new(SyncState::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Blocks until entry `ticket` is durable, syncing the file when no one else is; the reason
    /// if it cannot be.
    pub(crate) fn wait_durable(&self, ticket: Ticket) -> std::result::Result<(), String> {
        let mut state = self.shared.state.lock();
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if let Some(reason) = &state.failed {
                return Err(reason.clone());
            }
            if state.stopping {
                return Err("the write-ahead log was closed before the entry was synced".into());
            }
            if state.syncing || state.written < ticket {
                self.shared.changed.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let target = state.written;
            let synced = MutexGuard::unlocked(&mut state, || self.shared.file.sync_data());
            state.syncing = false;
            match synced {
                Ok(()) => state.durable = state.durable.max(target),
                Err(e) => state.failed = Some(format!("syncing the write-ahead log failed: {e}")),
            }
            self.shared.changed.notify_all();
        }
    }

    /// Every entry up to `ticket` is durable (a durable commit of the store's file holds it).
    pub(crate) fn durable_through(&self, ticket: Ticket) {
        let mut state = self.shared.state.lock();
        state.durable = state.durable.max(ticket);
        self.shared.changed.notify_all();
    }

    fn written(&self, ticket: Ticket) {
        self.shared.state.lock().written = ticket;
        self.shared.changed.notify_all();
    }

    fn stop(&self) {
        self.shared.state.lock().stopping = true;
        self.shared.changed.notify_all();
    }
}

/// What an existing log holds.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Logged {
    /// Its records, in position order, from its first entry to its last valid one that continues
    /// the one before.
    pub(crate) records: Vec<LoggedRecord>,
    /// The highest first position of the intact entries found after the point where `records`
    /// end. Entries from before the log last started over hold positions the store's file has;
    /// one beyond everything the file and `records` hold was cut off by damage before it.
    pub(crate) intact_beyond: Option<Position>,
}

/// The records an existing log holds, as [`read_all`] reads them; `None` when there is no log.
///
/// # Errors
/// As [`read_all`].
pub(crate) fn read(path: &Path, store_id: &str) -> Result<Option<Vec<LoggedRecord>>> {
    Ok(read_all(path, store_id)?.map(|logged| logged.records))
}

/// What an existing log holds; `None` when there is no log at `path`.
///
/// An entry torn by a crash (short, or failing its checksum) ends the log: it was never
/// acknowledged. Entries left from before the log last started over hold positions that do not
/// continue the entries before them, and end it too.
///
/// # Errors
/// [`Error::Wal`] when the file cannot be read, or is not the log of the store `store_id`.
pub(crate) fn read_all(path: &Path, store_id: &str) -> Result<Option<Logged>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(wal_error(path, &e.to_string())),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| wal_error(path, &e.to_string()))?;
    let expected = header(store_id).ok_or_else(|| wal_error(path, "the store id is too long"))?;
    let Some(found) = bytes.get(..HEADER_LEN as usize) else {
        // Created but not given its whole header: nothing was ever acknowledged through it. What
        // is there must be the start of that header (or zeros); anything else is another file.
        let torn_header = expected.starts_with(&bytes) || bytes.iter().all(|&b| b == 0);
        if torn_header {
            return Ok(Some(Logged::default()));
        }
        return Err(wal_error(
            path,
            "is not an oidb write-ahead log; move it away if it is not one (oidb creates \
             and removes it beside the store)",
        ));
    };
    if found.iter().all(|&b| b == 0) {
        return Ok(Some(Logged::default()));
    }
    if found.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(wal_error(
            path,
            "is not an oidb write-ahead log; move it away if it is not one (oidb creates \
             and removes it beside the store)",
        ));
    }
    if found != expected {
        return Err(wal_error(
            path,
            "belongs to another store (its header names another store id); move it away, \
             or put back the store file it belongs to",
        ));
    }
    let mut records = Vec::new();
    let mut rest = bytes.get(HEADER_LEN as usize..).unwrap_or_default();
    let mut next: Option<Position> = None;
    while let Some((first, entry, after)) = decode_entry(rest) {
        if next.is_some_and(|n| n != first) {
            break;
        }
        // An entry whose positions would run past the last there is was not written by oidb.
        let Some(position) = u64::try_from(entry.len())
            .ok()
            .and_then(|count| first.checked_add(count))
        else {
            break;
        };
        records.extend(
            entry
                .into_iter()
                .zip(first..)
                .map(|(r, at)| (at, r.to_vec())),
        );
        next = Some(position);
        rest = after;
    }
    Ok(Some(Logged {
        records,
        intact_beyond: intact_entries_in(rest).max(),
    }))
}

/// The first positions of the intact entries anywhere in `bytes`.
fn intact_entries_in(bytes: &[u8]) -> impl Iterator<Item = Position> + '_ {
    bytes
        .windows(ENTRY_MAGIC.len())
        .enumerate()
        .filter(|(_, window)| *window == ENTRY_MAGIC)
        .filter_map(|(at, _)| decode_entry(bytes.get(at..)?))
        .map(|(first, _, _)| first)
}

/// Moves a log that was damaged before entries it still holds intact to `<log>.damaged` (or
/// `.damaged.2`, and so on, beside earlier ones), where nothing removes it; returns its new path.
///
/// # Errors
/// [`Error::Wal`] when it cannot be moved.
pub(crate) fn keep_damaged(path: &Path) -> Result<PathBuf> {
    let aside = (1..=u32::MAX)
        .map(|n| {
            let mut name = path.as_os_str().to_owned();
            name.push(DAMAGED_SUFFIX);
            if n > 1 {
                name.push(format!(".{n}"));
            }
            PathBuf::from(name)
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| path.to_path_buf());
    std::fs::rename(path, &aside)
        .and_then(|()| sync_directory(path))
        .map_err(|e| wal_error(path, &format!("cannot move it to {}: {e}", aside.display())))?;
    Ok(aside)
}

/// Damaged logs kept beside the store whose log is at `path` ([`keep_damaged`]).
pub(crate) fn damaged_beside(path: &Path) -> Vec<PathBuf> {
    let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let mut prefix = name.to_os_string();
    prefix.push(DAMAGED_SUFFIX);
    let directory = if directory.as_os_str().is_empty() {
        Path::new(".")
    } else {
        directory
    };
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(std::result::Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(prefix.as_encoded_bytes())
        })
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// The 64-byte header naming the store; `None` if its id does not fit.
fn header(store_id: &str) -> Option<[u8; HEADER_LEN as usize]> {
    let id = store_id.as_bytes();
    if id.len() > MAX_STORE_ID {
        return None;
    }
    let mut header = [0u8; HEADER_LEN as usize];
    let (magic, rest) = header.split_at_mut(MAGIC.len());
    magic.copy_from_slice(MAGIC);
    let (len, rest) = rest.split_first_mut()?;
    *len = u8::try_from(id.len()).ok()?;
    rest.get_mut(..id.len())?.copy_from_slice(id);
    Some(header)
}

fn entry_len(records: &[&[u8]]) -> usize {
    ENTRY_HEADER_LEN + records.iter().map(|r| 4 + r.len()).sum::<usize>()
}

/// Writes the entry for `records` into `buffer`: header, then each record as its length (u32,
/// little-endian) and bytes. The checksum covers the first position, the count and the body.
fn encode_entry(buffer: &mut Vec<u8>, first: Position, records: &[&[u8]]) -> Result<()> {
    let too_big = || Error::InvalidEvent {
        field: "payload",
        reason: "the commit is too large for one write-ahead log entry (4 GiB)".into(),
    };
    buffer.clear();
    buffer.reserve(entry_len(records));
    buffer.extend_from_slice(&ENTRY_MAGIC);
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&first.to_le_bytes());
    let count = u32::try_from(records.len()).map_err(|_| too_big())?;
    buffer.extend_from_slice(&count.to_le_bytes());
    buffer.extend_from_slice(&[0; CHECKSUM_LEN]);
    for record in records {
        let len = u32::try_from(record.len()).map_err(|_| too_big())?;
        buffer.extend_from_slice(&len.to_le_bytes());
        buffer.extend_from_slice(record);
    }
    let body_len = u32::try_from(buffer.len() - ENTRY_HEADER_LEN).map_err(|_| too_big())?;
    let checksum = checksum(
        first,
        count,
        buffer.get(ENTRY_HEADER_LEN..).unwrap_or_default(),
    );
    if let Some(field) = buffer.get_mut(4..8) {
        field.copy_from_slice(&body_len.to_le_bytes());
    }
    if let Some(field) = buffer.get_mut(ENTRY_HEADER_LEN - CHECKSUM_LEN..ENTRY_HEADER_LEN) {
        field.copy_from_slice(&checksum);
    }
    Ok(())
}

/// The entry at the start of `bytes`: its first position, its records and what follows it;
/// `None` when no whole, intact entry starts there.
fn decode_entry(bytes: &[u8]) -> Option<Entry<'_>> {
    let (header, rest) = bytes.split_at_checked(ENTRY_HEADER_LEN)?;
    let (magic, header) = header.split_at(4);
    if magic != ENTRY_MAGIC {
        return None;
    }
    let (body_len, header) = header.split_at(4);
    let (first, header) = header.split_at(8);
    let (count, stored_checksum) = header.split_at(4);
    let body_len = usize::try_from(u32::from_le_bytes(body_len.try_into().ok()?)).ok()?;
    let first = u64::from_le_bytes(first.try_into().ok()?);
    let count = u32::from_le_bytes(count.try_into().ok()?);
    let (mut body, after) = rest.split_at_checked(body_len)?;
    if checksum(first, count, body) != stored_checksum {
        return None;
    }
    let mut records = Vec::with_capacity(usize::try_from(count).ok()?.min(body_len / 4));
    for _ in 0..count {
        let (len, rest) = body.split_at_checked(4)?;
        let len = usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?;
        let (record, rest) = rest.split_at_checked(len)?;
        records.push(record);
        body = rest;
    }
    body.is_empty().then_some((first, records, after))
}

fn checksum(first: Position, count: u32, body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(first.to_le_bytes());
    hasher.update(count.to_le_bytes());
    hasher.update(body);
    let digest = hasher.finalize();
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(digest.get(..CHECKSUM_LEN).unwrap_or(&[0; CHECKSUM_LEN]));
    sum
}

/// Makes a new file's directory entry durable, so that the file survives a power loss.
fn sync_directory(path: &Path) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

fn wal_error(path: &Path, reason: &str) -> Error {
    Error::Wal {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![u8::try_from(i).unwrap(); i * 7])
            .collect()
    }

    fn refs(records: &[Vec<u8>]) -> Vec<&[u8]> {
        records.iter().map(Vec::as_slice).collect()
    }

    fn write_durably(wal: &mut Wal, first: Position, records: &[&[u8]]) -> Result<()> {
        let ticket = wal.write(first, records)?;
        wal.sync().wait_durable(ticket).unwrap();
        Ok(())
    }

    #[test]
    fn entries_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "store-a").unwrap();
        let first = records(3);
        let second = records(2);
        write_durably(&mut wal, 1, &refs(&first)).unwrap();
        write_durably(&mut wal, 4, &refs(&second)).unwrap();
        let read = read(&path, "store-a").unwrap().unwrap();
        let positions: Vec<u64> = read.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5]);
        assert_eq!(read[4].1, second[1]);
    }

    #[test]
    fn a_torn_entry_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "s").unwrap();
        write_durably(&mut wal, 1, &refs(&records(2))).unwrap();
        write_durably(&mut wal, 3, &refs(&records(4))).unwrap();
        // Flip one byte of the second entry's last record.
        let end = wal.end;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], end - 1).unwrap();
        let read = read(&path, "s").unwrap().unwrap();
        assert_eq!(read.len(), 2);
    }

    #[test]
    fn an_entry_whose_positions_run_past_the_last_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "s").unwrap();
        write_durably(&mut wal, u64::MAX - 1, &refs(&records(1))).unwrap();
        write_durably(&mut wal, u64::MAX, &refs(&records(2))).unwrap();
        let read = read(&path, "s").unwrap().unwrap();
        assert_eq!(read.len(), 1);
    }

    #[test]
    fn a_short_file_is_a_torn_header_only_when_it_starts_like_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let expected = header("s").unwrap();
        std::fs::write(&path, &expected[..20]).unwrap();
        assert_eq!(read(&path, "s").unwrap(), Some(Vec::new()));
        std::fs::write(&path, b"notes").unwrap();
        assert!(matches!(read(&path, "s"), Err(Error::Wal { .. })));
    }

    #[test]
    fn intact_entries_past_a_damaged_one_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "s").unwrap();
        write_durably(&mut wal, 1, &refs(&records(2))).unwrap();
        write_durably(&mut wal, 3, &refs(&records(2))).unwrap();
        let second_end = wal.end;
        write_durably(&mut wal, 5, &refs(&records(2))).unwrap();
        // Damage the second entry's last byte: the third is intact past it.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, second_end - 1).unwrap();
        file.write_all_at(&[!byte[0]], second_end - 1).unwrap();
        let logged = read_all(&path, "s").unwrap().unwrap();
        assert_eq!(logged.records.len(), 2);
        assert_eq!(logged.intact_beyond, Some(5));
    }

    #[test]
    fn entries_from_before_a_restart_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "s").unwrap();
        write_durably(&mut wal, 1, &refs(&records(1))).unwrap();
        write_durably(&mut wal, 2, &refs(&records(1))).unwrap();
        write_durably(&mut wal, 3, &refs(&records(1))).unwrap();
        wal.restart();
        write_durably(&mut wal, 4, &refs(&records(3))).unwrap();
        let read = read(&path, "s").unwrap().unwrap();
        let positions: Vec<u64> = read.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, vec![4, 5, 6]);
    }

    #[test]
    fn a_failed_sync_fails_every_waiter_from_then_on() {
        // fdatasync on a character device fails (EINVAL), as a failing disk would.
        let Ok(device) = File::open("/dev/null") else {
            return;
        };
        let sync = Sync::new(Arc::new(device));
        sync.written(1);
        let error = sync.wait_durable(1).unwrap_err();
        assert!(
            error.contains("syncing the write-ahead log failed"),
            "{error}"
        );
        sync.written(2);
        assert!(
            sync.wait_durable(2).is_err(),
            "a later entry is not durable either"
        );
        // What a durable commit of the store's file covers is durable, whatever the log did.
        sync.durable_through(2);
        assert!(sync.wait_durable(2).is_ok());
    }

    #[test]
    fn entries_become_durable_in_order_and_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let mut wal = Wal::create(&path, "s").unwrap();
        let tickets: Vec<Ticket> = (1..=20)
            .map(|p| wal.write(p, &refs(&records(1))).unwrap())
            .collect();
        assert_eq!(tickets, (1..=20).collect::<Vec<_>>());
        wal.sync().wait_durable(20).unwrap();
        for ticket in tickets {
            assert!(wal.sync().wait_durable(ticket).is_ok());
        }
        assert_eq!(read(&path, "s").unwrap().unwrap().len(), 20);
    }

    #[test]
    fn waiters_on_many_threads_each_see_their_entry_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        let wal = Arc::new(Mutex::new(Wal::create(&path, "s").unwrap()));
        let next = Arc::new(Mutex::new(1u64));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (wal, next) = (Arc::clone(&wal), Arc::clone(&next));
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        // Written in position order, as the writer does.
                        let (sync, ticket) = {
                            let mut wal = wal.lock();
                            let mut next = next.lock();
                            let ticket = wal.write(*next, &refs(&records(1))).unwrap();
                            *next += 1;
                            (wal.sync().clone(), ticket)
                        };
                        sync.wait_durable(ticket).unwrap();
                        assert!(sync.shared.state.lock().durable >= ticket);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(read(&path, "s").unwrap().unwrap().len(), 200);
    }

    #[test]
    fn another_stores_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        Wal::create(&path, "store-a").unwrap();
        let error = read(&path, "store-b").unwrap_err().to_string();
        assert!(error.contains("another store"), "{error}");
        std::fs::write(&path, vec![7u8; 100]).unwrap();
        let error = read(&path, "store-a").unwrap_err().to_string();
        assert!(error.contains("not an oidb write-ahead log"), "{error}");
    }

    #[test]
    fn a_missing_or_empty_log_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.oidb-wal");
        assert!(read(&path, "s").unwrap().is_none());
        std::fs::write(&path, b"").unwrap();
        assert!(read(&path, "s").unwrap().unwrap().is_empty());
    }

    #[test]
    fn the_path_is_the_store_path_with_wal_appended() {
        assert_eq!(
            path_for(Path::new("/tmp/agent.oidb")),
            PathBuf::from("/tmp/agent.oidb-wal")
        );
    }
}
