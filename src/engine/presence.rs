//! Who has a store's file open: locks on two bytes of the file far past any data, which the
//! operating system releases when the process holding them ends, however it ends.
//!
//! A writer holds the writer byte exclusively from the end of its open (recovery done) until it
//! closes; every read-only handle holds the readers byte shared. So a reader can tell whether a
//! writer is live, and what must have the file to itself (a format upgrade, a compaction) can
//! tell whether anyone reads it.
//!
//! A third byte lets a writer leave acknowledged appends unpublished (uncommitted to the file,
//! durable in its write-ahead log) while no read-only handle has the file open: it holds the
//! unpublished byte exclusively from the first such append until its next publish, and publishes
//! at its next tick once it sees a reader. A read-only open, once it holds the readers byte,
//! waits until it can take the unpublished byte, so that it sees every append acknowledged before
//! it began. These are open-file-description locks (Linux `F_OFD_SETLK`):
//! they belong to the handle that took them, not to the process, so another handle on the same
//! file in the same process neither shares nor drops them. redb's own locks (its multi-process
//! protocol) lie on other bytes.
//!
//! The handle also remembers which file it opened, so that a reader notices when the path comes
//! to name another one.
//!
//! Uses `model::error`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

use crate::model::error::{Error, Result};

/// The first of oidb's lock bytes: 2^61, below redb's (from 2^62) and beyond any real file.
const BASE: i64 = 1 << 61;
/// Held exclusively by the writer while it has the file open.
const WRITER_BYTE: i64 = BASE;
/// Held shared by every read-only handle.
const READERS_BYTE: i64 = BASE + 1;
/// Held exclusively by a writer while it keeps acknowledged appends unpublished.
const UNPUBLISHED_BYTE: i64 = BASE + 2;
/// How long a read-only open waits, at most, for its writer to publish the appends it holds
/// back. A writer publishes them at its next tick ([`PUBLISH_INTERVAL`](crate::PUBLISH_INTERVAL)
/// by default); one that does not within this time (stopped, or set to publish more rarely) is
/// read as of its last publish.
pub(crate) const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an open waits out a lock that only lingers. A process that starts a child copies
/// its open files into the child, which keeps them until its `exec` closes them; a handle closed
/// meanwhile (by that process, in another thread) holds its locks that long, and an open of the
/// same file then finds it taken for a moment.
pub(crate) const LINGERING_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A handle's presence on a file: its locks, held until it is dropped (closing the file
/// releases them).
#[derive(Debug)]
pub(crate) struct Presence {
    file: File,
    path: PathBuf,
    /// The file's device and inode when it was opened.
    identity: (u64, u64),
}

/// What kind of lock, on which byte.
fn lock(kind: libc::c_int, byte: i64) -> libc::flock {
    libc::flock {
        // The lock types are small constants (0 to 2): they fit the field.
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte,
        l_len: 1,
        l_pid: 0,
    }
}

fn io_error(path: &Path, error: nix::Error) -> Error {
    Error::Open {
        path: path.to_path_buf(),
        source: std::io::Error::from(error),
    }
}

impl Presence {
    fn open(path: &Path, write: bool) -> Result<Presence> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let metadata = file.metadata().map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Presence {
            file,
            path: path.to_path_buf(),
            identity: (metadata.dev(), metadata.ino()),
        })
    }

    /// Marks the file as written by this handle. redb already keeps a second writer out, so the
    /// byte is free; a writer that finds it taken reports the file in use.
    pub(crate) fn writer(path: &Path) -> Result<Presence> {
        let presence = Presence::open(path, true)?;
        // A writer handle this process closed a moment ago may still hold the byte in a child
        // being started (it keeps the parent's open files until its `exec`): wait that out.
        let deadline = std::time::Instant::now() + LINGERING_LOCK_WAIT;
        while !presence.try_lock(libc::F_WRLCK, WRITER_BYTE)? {
            if std::time::Instant::now() >= deadline {
                return Err(Error::FileInUse {
                    path: path.to_path_buf(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(presence)
    }

    /// Marks the file as read by this handle.
    pub(crate) fn reader(path: &Path) -> Result<Presence> {
        let presence = Presence::open(path, false)?;
        // Shared locks never conflict with each other; only a format upgrade or a compaction
        // holds the byte exclusively, for as long as it runs: wait for it to finish.
        let taken = lock(libc::F_RDLCK, READERS_BYTE);
        fcntl(&presence.file, FcntlArg::F_OFD_SETLKW(&taken)).map_err(|e| io_error(path, e))?;
        presence.wait_until_published(PUBLISH_WAIT)?;
        Ok(presence)
    }

    /// Waits, up to `wait`, until no writer holds back unpublished appends. Called once this
    /// handle holds the readers byte: a writer holding some back sees it at its next tick,
    /// publishes, and lets the byte go.
    fn wait_until_published(&self, wait: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.try_lock(libc::F_RDLCK, UNPUBLISHED_BYTE)? {
                return self.unlock(UNPUBLISHED_BYTE);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Marks acknowledged appends as held back from the file by this writer, until
    /// [`Presence::release_unpublished`]: a read-only open meanwhile waits. False when a reader
    /// is opening at this moment (it holds the byte an instant): the writer must then publish at
    /// its next tick as usual.
    pub(crate) fn hold_unpublished(&self) -> Result<bool> {
        self.try_lock(libc::F_WRLCK, UNPUBLISHED_BYTE)
    }

    /// Says the appends held back are published: read-only opens go on.
    pub(crate) fn release_unpublished(&self) -> Result<()> {
        self.unlock(UNPUBLISHED_BYTE)
    }

    fn unlock(&self, byte: i64) -> Result<()> {
        let unlocked = lock(libc::F_UNLCK, byte);
        fcntl(&self.file, FcntlArg::F_OFD_SETLK(&unlocked)).map_err(|e| io_error(&self.path, e))?;
        Ok(())
    }

    fn try_lock(&self, kind: libc::c_int, byte: i64) -> Result<bool> {
        let taken = lock(kind, byte);
        match fcntl(&self.file, FcntlArg::F_OFD_SETLK(&taken)) {
            Ok(_) => Ok(true),
            Err(nix::Error::EAGAIN | nix::Error::EACCES) => Ok(false),
            Err(e) => Err(io_error(&self.path, e)),
        }
    }

    /// Whether a process other than this handle has the file open for writing.
    pub(crate) fn writer_live(&self) -> Result<bool> {
        let mut probe = lock(libc::F_RDLCK, WRITER_BYTE);
        fcntl(&self.file, FcntlArg::F_OFD_GETLK(&mut probe))
            .map_err(|e| io_error(&self.path, e))?;
        Ok(i32::from(probe.l_type) != libc::F_UNLCK)
    }

    /// Whether any read-only handle, in any process, has the file at `path` open now.
    pub(crate) fn readers_present(path: &Path) -> Result<bool> {
        Presence::open(path, false)?.readers_present_now()
    }

    /// Whether any read-only handle, in any process, has this handle's file open now.
    pub(crate) fn readers_present_now(&self) -> Result<bool> {
        let mut probe = lock(libc::F_WRLCK, READERS_BYTE);
        fcntl(&self.file, FcntlArg::F_OFD_GETLK(&mut probe))
            .map_err(|e| io_error(&self.path, e))?;
        Ok(i32::from(probe.l_type) != libc::F_UNLCK)
    }

    /// Keeps read-only handles out until [`Presence::let_readers_in`] or the drop, for
    /// `operation`, which needs the file to itself: [`Error::FileBeingRead`] when some have it
    /// open. A read-only open meanwhile waits.
    pub(crate) fn keep_readers_out(&self, operation: &'static str) -> Result<()> {
        if self.try_lock(libc::F_WRLCK, READERS_BYTE)? {
            return Ok(());
        }
        Err(Error::FileBeingRead {
            path: self.path.clone(),
            operation,
        })
    }

    /// Lets read-only handles in again, after [`Presence::keep_readers_out`].
    pub(crate) fn let_readers_in(&self) -> Result<()> {
        self.unlock(READERS_BYTE)
    }

    /// A presence that only keeps readers out, for `operation` (a compaction), until dropped.
    pub(crate) fn exclusive(path: &Path, operation: &'static str) -> Result<Presence> {
        let presence = Presence::open(path, true)?;
        presence.keep_readers_out(operation)?;
        Ok(presence)
    }

    /// [`Error::FileReplaced`] when the path no longer names the file this handle opened.
    pub(crate) fn check_same_file(&self) -> Result<()> {
        let replaced = match std::fs::metadata(&self.path) {
            Ok(now) => (now.dev(), now.ino()) != self.identity,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(source) => {
                return Err(Error::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if replaced {
            return Err(Error::FileReplaced {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}
