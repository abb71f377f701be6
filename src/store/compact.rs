//! Compaction: giving a file's free pages back to the file system.
//!
//! Uses `model::error`, `engine::presence`, `store::handle`.

use std::path::Path;

use crate::engine::presence::Presence;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::store::handle::Store;
use crate::store::handle::DEFAULT_CACHE_BYTES;
use crate::store::handle::{check_existing_file, open_error};

/// What [`compact`] did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compaction {
    /// The file's size before.
    pub bytes_before: u64,
    /// The file's size after.
    pub bytes_after: u64,
}

/// The most passes of redb's compaction; each moves what it can towards the start of the file.
const MAX_PASSES: usize = 64;

/// Compacts the store file at `path`: moves live pages to the start of the file and gives the
/// free space at its end back to the file system. The events, their positions and their hashes
/// do not change.
///
/// The file must not be open anywhere, in this process or another: compaction needs it to itself
/// ([`Error::FileInUse`] while a writer has it, [`Error::FileBeingRead`] while readers do).
/// A file whose writer stopped without closing it is repaired first.
///
/// ```
/// use oidb::{EventType, Store};
/// use serde_json::json;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("agent.oidb");
/// let store = Store::open(&path)?;
/// for i in 0..100 {
///     store.log_event("intent-42", EventType::Comment, json!({"i": i}))?;
/// }
/// drop(store); // compaction needs the file to itself
///
/// let done = oidb::compact(&path)?;
/// assert!(done.bytes_after <= done.bytes_before);
/// assert_eq!(Store::open(&path)?.last_position()?, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Open`] when the file is missing; [`Error::FileInUse`] when it is open elsewhere;
/// [`Error::NotAnOidbFile`] and [`Error::UnsupportedFormat`] as [`Store::open`]; a storage error.
pub fn compact(path: impl AsRef<Path>) -> Result<Compaction> {
    let path = path.as_ref();
    if !check_existing_file(path)? {
        return Err(Error::Open {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    // Opening it as a store first checks that it is one (and repairs it if it needs to be).
    drop(Store::open(path)?);
    // Pages move: a reader in another process must not be reading them meanwhile.
    let _readers_out = Presence::exclusive(path, "compaction")?;
    let size = || {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })
    };
    let bytes_before = size()?;
    // In redb's single-writer mode, which locks only its own bytes of the file, not the
    // whole file with the one oidb keeps readers out by.
    let mut db = redb::Builder::new()
        .set_cache_size(DEFAULT_CACHE_BYTES)
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    for _ in 0..MAX_PASSES {
        if !db.compact().map_err(|e| Error::Storage(e.into()))? {
            break;
        }
    }
    drop(db);
    Ok(Compaction {
        bytes_before,
        bytes_after: size()?,
    })
}
