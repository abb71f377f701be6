//! Files a command writes its output to (`export --out`, `trace --otlp`): whole or not at all,
//! never over the store the command reads, through symbolic links, and straight into a pipe or a
//! device, which cannot be replaced.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::failure::Failure;

/// How many symbolic links in a row are followed before giving up, as the kernel does.
const MAX_LINKS: usize = 40;

/// Writes `target` with `write` and returns what `write` returned.
///
/// A regular file, or a new one, is written beside it as `NAME.partial`, synced, and renamed over
/// it once complete, so it is whole or untouched; a symbolic link is followed, so that the file it
/// points to is the one replaced. A pipe or a device is written into directly. A target that is
/// `store` or its write-ahead log is refused before anything is written.
///
/// # Errors
/// The target cannot be written (named in the message), or `write` failed.
pub fn write_whole<T>(
    target: &Path,
    store: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let target = follow_links(target)?;
    refuse_store(&target, store)?;
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => Err(Failure::Error(format!(
            "cannot write {}: it is a directory; give a file's path",
            target.display()
        ))),
        Ok(meta) if !meta.is_file() => {
            let file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| cannot_write(&target, &e))?;
            write_into(file, &target, write)
        }
        _ => replace(&target, write),
    }
}

/// Writes `NAME.partial` beside `target`, then renames it over `target`; removes it on failure.
fn replace<T>(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let partial = partial_path(target);
    let written = (|| {
        let file = File::create(&partial).map_err(|e| cannot_write(&partial, &e))?;
        let value = write_into(file, &partial, write)?;
        std::fs::rename(&partial, target).map_err(|e| cannot_write(target, &e))?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// Writes into `file` (at `path`) through a buffer, then flushes and syncs it.
fn write_into<T>(
    file: File,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut out = BufWriter::new(Noted { file, error: None });
    let written = write(&mut out).and_then(|value| {
        out.flush().map_err(|e| cannot_write(path, &e))?;
        Ok(value)
    });
    let (noted, _) = out.into_parts();
    match (written, noted.error) {
        // The command's own error says "cannot write output"; say which file.
        (Err(_), Some(error)) => Err(cannot_write(path, &error)),
        (Err(failure), None) => Err(failure),
        (Ok(value), _) => {
            // A device or a pipe cannot be synced (EINVAL); a file can.
            match noted.file.sync_all() {
                Err(e) if noted.file.metadata().is_ok_and(|m| m.is_file()) => {
                    Err(cannot_write(path, &e))
                }
                _ => Ok(value),
            }
        }
    }
}

/// A file that keeps the first error writing to it, so that a failure can name the file.
struct Noted {
    file: File,
    error: Option<io::Error>,
}

impl Write for Noted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf).inspect_err(|e| self.note(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().inspect_err(|e| self.note(e))
    }
}

impl Noted {
    fn note(&mut self, error: &io::Error) {
        if self.error.is_none() {
            self.error = Some(io::Error::new(error.kind(), error.to_string()));
        }
    }
}

/// `path`, or the file its chain of symbolic links ends at (which need not exist yet).
fn follow_links(path: &Path) -> Result<PathBuf, Failure> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = std::fs::read_link(&path).map_err(|e| cannot_write(&path, &e))?;
                path = match path.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(Failure::Error(format!(
        "cannot write {}: more than {MAX_LINKS} symbolic links in a row",
        path.display()
    )))
}

/// Refuses `target` when it is the store (or the store's write-ahead log) being read.
fn refuse_store(target: &Path, store: &Path) -> Result<(), Failure> {
    let Ok(written) = std::fs::metadata(target) else {
        return Ok(());
    };
    // The log is beside the store's file, wherever the store was named from.
    let mut wal = std::fs::canonicalize(store)
        .unwrap_or_else(|_| store.to_path_buf())
        .into_os_string();
    wal.push("-wal");
    for read in [store, Path::new(&wal)] {
        if std::fs::metadata(read)
            .is_ok_and(|meta| meta.dev() == written.dev() && meta.ino() == written.ino())
        {
            return Err(Failure::Error(format!(
                "{} is {}, which this command reads; writing there would destroy it: give the \
                 output another path",
                target.display(),
                if read == store {
                    format!("the store {}", store.display())
                } else {
                    format!("the write-ahead log of {}", store.display())
                }
            )));
        }
    }
    Ok(())
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

fn cannot_write(path: &Path, error: &io::Error) -> Failure {
    Failure::Error(format!("cannot write {}: {error}", path.display()))
}
