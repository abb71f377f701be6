//! CPU time spent so far, from Linux's `/proc` (`None` elsewhere): for figures that the
//! machine's load moves less than wall-clock rates.

use std::time::Duration;

/// User plus system CPU time of the whole process, every thread.
pub fn process() -> Option<Duration> {
    from_stat("/proc/self/stat")
}

/// User plus system CPU time of the calling thread alone.
pub fn thread() -> Option<Duration> {
    from_stat("/proc/thread-self/stat")
}

/// User plus system CPU time of another process (a server a benchmark started), every thread.
pub fn of_process(pid: u32) -> Option<Duration> {
    from_stat(&format!("/proc/{pid}/stat"))
}

/// The calling thread's CPU time to the nanosecond, from the scheduler's count (the first field
/// of `/proc/thread-self/schedstat`): for threads that run too little for [`thread`]'s 10 ms
/// ticks to see.
pub fn thread_exact() -> Option<Duration> {
    from_schedstat("/proc/thread-self/schedstat")
}

/// CPU time, to the nanosecond, of every thread of this process named `name` (as the system
/// keeps it: at most 15 bytes): a side's own background threads, such as fjall's workers. A
/// thread that has ended no longer counts.
pub fn threads_named(name: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue; // ended meanwhile
        };
        if comm.trim_end() == name {
            total += from_schedstat(task.join("schedstat").to_str()?).unwrap_or_default();
        }
    }
    Some(total)
}

/// The first field of a `schedstat` file: the time on the CPU, in nanoseconds.
fn from_schedstat(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(Duration::from_nanos(text.split(' ').next()?.parse().ok()?))
}

/// Fields 14 and 15 (`utime`, `stime`) of a `/proc/…/stat` file, in the kernel's clock ticks of
/// 10 ms. The command name before them is in parentheses and may hold spaces.
fn from_stat(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = text.get(text.rfind(')')? + 2..)?;
    let mut fields = after_name.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}
