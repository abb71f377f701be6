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
        "{path} is open for writing in another process{holder}.\n  \
         A .oidb file has one writer at a time: `oidb import`, `compact` and `demo` write, so \
         they wait for that process to close it;\n  \
         every command that only reads (`stats`, `events`, `tail -f`, `verify`, `costs`, ...) \
         works beside it.\n  \
         Run this again once that process has closed the file.",
        path = path.display()
    )
}

/// Which process has a file open for writing, where the system says (Linux's `/proc`: a process
/// whose open files include it, opened for writing).
mod holder {
    use std::path::Path;

    #[cfg(target_os = "linux")]
    pub fn describe(path: &Path) -> Option<String> {
        let wanted = std::fs::canonicalize(path).ok()?;
        let own = std::process::id();
        let pid = std::fs::read_dir("/proc").ok()?.find_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            (pid != own && writes(pid, &wanted)).then_some(pid)
        })?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Some(format!("pid {pid} {}", name.trim()).trim_end().to_owned())
    }

    /// Whether process `pid` has `file` open for writing.
    #[cfg(target_os = "linux")]
    fn writes(pid: u32, file: &Path) -> bool {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target == file)
                && std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .is_ok_and(|info| opened_for_writing(&info))
        })
    }

    /// Whether an fdinfo's `flags:` (octal) say the file was opened for writing.
    #[cfg(target_os = "linux")]
    fn opened_for_writing(fdinfo: &str) -> bool {
        fdinfo
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
            .is_some_and(|flags| flags & 0o3 != 0)
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
