//! What the benchmark ran on: cores, memory, kernel, and the disk and filesystem under its files.

use std::path::Path;

use serde_json::{json, Value};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_owned())
}

fn memory_mib() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// The mount that holds `dir`: (device, filesystem type, options).
fn mount_of(dir: &Path) -> (String, String, String) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut best: Option<(usize, (String, String, String))> = None;
    for line in read("/proc/mounts").lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        let mount_point = Path::new(fields[1]);
        if dir.starts_with(mount_point) {
            let depth = mount_point.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((
                    depth,
                    (fields[0].into(), fields[2].into(), fields[3].into()),
                ));
            }
        }
    }
    best.map_or_else(Default::default, |(_, m)| m)
}

/// Whether the block device behind `device` says it is rotational.
fn disk_kind(device: &str) -> String {
    let name = device.trim_start_matches("/dev/");
    let base: String = name.trim_end_matches(|c: char| c.is_ascii_digit()).into();
    for candidate in [name.to_owned(), base] {
        let flag = read(&format!("/sys/block/{candidate}/queue/rotational"));
        match flag.trim() {
            "0" => return format!("{candidate}: non-rotational (SSD or virtual)"),
            "1" => return format!("{candidate}: reports rotational (a virtual disk often does)"),
            _ => {}
        }
    }
    "unknown".into()
}

pub fn describe(dir: &Path) -> Value {
    let (device, fs, options) = mount_of(dir);
    json!({
        "cpu": cpu_model(),
        "nproc": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "memory_mib": memory_mib(),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "disk": disk_kind(&device),
        "device": device,
        "filesystem": fs,
        "mount_options": options,
        "loadavg_at_start": read("/proc/loadavg").trim(),
    })
}
