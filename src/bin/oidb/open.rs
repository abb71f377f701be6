//! Opening files for a command, and saying clearly why one cannot be opened.

use std::path::Path;

use oidb::{Error, ReadOnlyStore, Store};

use crate::failure::Failure;

/// Opens an existing store without writing to it: every command that only reads (`stats`,
/// `events`, `show`, `tail`, `export`, `verify`, `costs`, `trace`, `blocks`). A file whose writer
/// stopped without closing it is repaired first (that one write is said on stderr).
pub fn for_reading(path: &Path) -> Result<ReadOnlyStore, Failure> {
    reader(path, explain)
}

/// As [`for_reading`], for `verify`: a store too damaged to open (truncated, or with damaged
/// pages or records) did not verify, and says so with its exit status; a missing file, one in
/// use, one the system refuses, or a file of another kind is an error as elsewhere.
pub fn for_verification(path: &Path) -> Result<ReadOnlyStore, Failure> {
    reader(path, |path, error| match error {
        Error::Corrupt { .. } | Error::Storage(_) => {
            Failure::Verification(format!("{}: {error}", path.display()))
        }
        // A redb file cut short or damaged (the library's words for it): the kinds of "not an
        // oidb file" that were one.
        Error::NotAnOidbFile { ref reason, .. }
            if reason.starts_with("it is truncated")
                || reason.starts_with("the file is damaged or truncated") =>
        {
            Failure::Verification(error.to_string())
        }
        other => explain(path, other),
    })
}

fn reader(
    path: &Path,
    explain: impl Fn(&Path, Error) -> Failure,
) -> Result<ReadOnlyStore, Failure> {
    match ReadOnlyStore::open(path) {
        Err(Error::NeedsRepair { .. }) => {
            drop(writable(path, false, &explain)?);
            eprintln!(
                "note: {} was not closed cleanly (its writer stopped without closing it); repaired it",
                path.display()
            );
            ReadOnlyStore::open(path).map_err(|e| explain(path, e))
        }
        opened => opened.map_err(|e| explain(path, e)),
    }
}

/// Opens a store to write to, creating the file if `create` and it is missing.
pub fn for_writing(path: &Path, create: bool) -> Result<Store, Failure> {
    writable(path, create, explain)
}

fn writable(
    path: &Path,
    create: bool,
    explain: impl Fn(&Path, Error) -> Failure,
) -> Result<Store, Failure> {
    if !create && !path.exists() {
        return Err(missing(path));
    }
    Store::builder()
        .actor("oidb-cli")
        .open(path)
        .map_err(|e| explain(path, e))
}

/// The message for an error met while opening `path`.
pub fn explain(path: &Path, error: Error) -> Failure {
    match error {
        Error::FileInUse { .. } => Failure::Error(in_use(path)),
        Error::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            missing(path)
        }
        Error::Open { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Failure::Error(not_writable(path, &source))
        }
        // These do not name the file themselves.
        other @ (Error::Storage(_) | Error::Corrupt { .. }) => {
            Failure::Error(format!("{}: {other}", path.display()))
        }
        other => Failure::from(other),
    }
}

fn missing(path: &Path) -> Failure {
    if let Some(directory) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        return Failure::Error(format!(
            "{}: no such file, and no directory {} to hold it; check the path",
            path.display(),
            directory.display()
        ));
    }
    Failure::Error(format!(
        "{}: no such file; `oidb import {} EVENTS.jsonl` creates one from OpenIntent events, \
         `oidb demo` writes an example",
        path.display(),
        path.display()
    ))
}

fn not_writable(path: &Path, source: &std::io::Error) -> String {
    format!(
        "cannot open {path} for writing ({source}).\n  \
         `oidb import`, `compact` and `demo` write to the file; and a file whose writer stopped \
         without closing it is repaired, which writes to it, before anything reads it.\n  \
         Run this as a user who may write the file, or on a copy: `cp {path} copy.oidb`.",
        path = path.display()
    )
}

fn in_use(path: &Path) -> String {
    let holder = holder::describe(path)
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    format!(
        "{path} is in use by another process{holder}.\n  \
         A .oidb file has one writer at a time, and while a process writes it, no other process \
         may read it;\n  \
         `oidb import`, `compact`, `demo`, `verify`, `costs`, `trace` and `blocks` also need \
         the file to themselves (stop any `oidb tail -f` on it).\n  \
         Run this again once that process has closed the file.",
        path = path.display()
    )
}

/// Which process holds a file's lock, where the system says (Linux's `/proc/locks`).
mod holder {
    use std::path::Path;

    #[cfg(target_os = "linux")]
    pub fn describe(path: &Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;

        let metadata = std::fs::metadata(path).ok()?;
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        let wanted = format!(
            "{:02x}:{:02x}:{}",
            major(metadata.dev()),
            minor(metadata.dev()),
            metadata.ino()
        );
        let pid = locks.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  WRITE 4378 fe:00:10027082 0 EOF"; OFD locks show pid -1.
            match fields.as_slice() {
                [_, _, _, _, pid, device_inode, ..] if *device_inode == wanted => {
                    pid.parse::<u32>().ok().filter(|p| *p != std::process::id())
                }
                _ => None,
            }
        })?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Some(format!("pid {pid} {}", name.trim()).trim_end().to_owned())
    }

    #[cfg(target_os = "linux")]
    fn major(dev: u64) -> u64 {
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
    }

    #[cfg(target_os = "linux")]
    fn minor(dev: u64) -> u64 {
        (dev & 0xff) | ((dev >> 12) & !0xff)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn describe(_path: &Path) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_named() {
        let path = Path::new("/data/agent.oidb");
        let error = Error::Corrupt {
            position: 0,
            reason: "format version is not 4 bytes".into(),
        };
        let Failure::Error(message) = explain(path, error) else {
            panic!("not an error");
        };
        assert!(message.starts_with("/data/agent.oidb: "), "{message}");
    }

    #[test]
    fn a_file_that_cannot_be_opened_for_writing_says_why_it_must_be_and_what_to_do() {
        let path = Path::new("/data/agent.oidb");
        let error = Error::Open {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let Failure::Error(message) = explain(path, error) else {
            panic!("not an error");
        };
        for part in [
            "cannot open /data/agent.oidb for writing",
            "`oidb import`, `compact` and `demo` write to the file",
            "repaired",
            "cp /data/agent.oidb copy.oidb",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }
}
