//! A checkpoint beside a store: the last position a consumer outside the file has dealt with
//! (the replicator's, `<file>.replicate-<consumer>`; the OTLP shipper's, `<file>.ship-<consumer>`),
//! kept in a small file beside the store, not in it.
//!
//! The store is read through a [`ReadOnlyStore`](crate::store::read_only::ReadOnlyStore) so that
//! the agent writing it keeps it; a read-only handle cannot write the file's own durable
//! consumers, so the checkpoint lives beside it. It is replaced atomically (a temporary file written, flushed to
//! disk, renamed over it, and the folder flushed), so a crash leaves the old checkpoint or the
//! new one, never a torn one; and it names the store it belongs to, so a checkpoint is never
//! applied to another file that took the path.
//!
//! Uses `model::event`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::event::Position;

/// The side file of one consumer of one store.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointFile {
    path: PathBuf,
    store_id: String,
    /// What the consumer does, for messages: `replicate`, `ship`.
    verb: &'static str,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    store_id: String,
    position: Position,
}

impl CheckpointFile {
    /// The checkpoint `<file>.<verb>-<consumer>` of `consumer` for the store at `store_path`
    /// whose id is `store_id`.
    pub(crate) fn beside(
        store_path: &Path,
        verb: &'static str,
        consumer: &str,
        store_id: &str,
    ) -> CheckpointFile {
        let mut name = store_path.as_os_str().to_owned();
        name.push(format!(".{verb}-{consumer}"));
        CheckpointFile {
            path: PathBuf::from(name),
            store_id: store_id.to_owned(),
            verb,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved position, 0 when there is no file yet.
    pub(crate) fn load(&self) -> Result<Position, String> {
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let saved: Saved = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is not a checkpoint of oidb {} ({e}); remove it to {} from the start",
                self.path.display(),
                self.verb,
                self.verb
            )
        })?;
        if saved.store_id != self.store_id {
            return Err(format!(
                "{} belongs to the store {}, not to this file's store {}; remove it to {} this \
                 file from the start",
                self.path.display(),
                saved.store_id,
                self.store_id,
                self.verb
            ));
        }
        Ok(saved.position)
    }

    /// Replaces the saved position, durably.
    pub(crate) fn save(&self, position: Position) -> Result<(), String> {
        let fail = |what: &str, e: std::io::Error| {
            format!("cannot {what} the checkpoint {}: {e}", self.path.display())
        };
        let mut temporary = self.path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let body = serde_json::to_vec(&Saved {
            store_id: self.store_id.clone(),
            position,
        })
        .map_err(|e| fail("encode", e.into()))?;
        let mut file = File::create(&temporary).map_err(|e| fail("write", e))?;
        file.write_all(&body).map_err(|e| fail("write", e))?;
        file.sync_all().map_err(|e| fail("flush", e))?;
        fs::rename(&temporary, &self.path).map_err(|e| fail("rename", e))?;
        let folder = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail("flush the folder of", e))
    }
}

/// Why a consumer's (or a stream's) name cannot be used, or `None`: JetStream names and the
/// names in checkpoint files are letters, digits, `-` and `_`.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Some("only ASCII letters, digits, `-` and `_` may be used")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_position_comes_back_and_only_for_its_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("a.oidb");
        let file = CheckpointFile::beside(&store, "replicate", "OIDB", "s1");
        assert_eq!(file.load().unwrap(), 0);
        file.save(42).unwrap();
        file.save(43).unwrap();
        assert_eq!(file.load().unwrap(), 43);
        assert!(file.path().ends_with("a.oidb.replicate-OIDB"));
        let other = CheckpointFile::beside(&store, "replicate", "OIDB", "s2");
        assert!(other
            .load()
            .unwrap_err()
            .contains("belongs to the store s1"));
        fs::write(file.path(), b"{").unwrap();
        assert!(file
            .load()
            .unwrap_err()
            .contains("not a checkpoint of oidb replicate"));
    }
}
