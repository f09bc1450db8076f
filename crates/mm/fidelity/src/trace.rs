//! The kernel's own record of when it flushed memory-cgroup statistics,
//! for the model's clock: the tracepoint `memcg:memcg_flush_stats` (6.14+,
//! mm/memcontrol.c `__mem_cgroup_flush_stats()`), read from a trace
//! instance of the run's own.
//!
//! ```text
//!   mount -t tracefs nodev <tmp>/klab-fidelity-tracefs-<pid>-<n>   a private mount
//!   <mount>/instances/klab-fidelity-<pid>-<n>/                     mkdir: its own ring buffer
//!     trace_clock = mono                                           CLOCK_MONOTONIC, as the worker's times
//!     events/memcg/memcg_flush_stats/filter =
//!       (id == <root> && (force == 1 || needs_flush == 1)) || id == <the run's cgroup>
//!     events/memcg/memcg_flush_stats/enable = 1
//!     trace_pipe                                                   read while the worker runs
//!   ... rmdir the instance, umount, rmdir the mount point
//! ```
//!
//! Each event is one call of `__mem_cgroup_flush_stats(memcg, force)`:
//! `memcg_id` (the cgroup's inode number), `stats_updates` (its pending
//! count then), `force` (the periodic work) and `needs_flush` (above the
//! threshold); it flushed iff `force || needs_flush`. The filter keeps the
//! root's flushes (they flush every cgroup: the periodic work every 2 s,
//! and any reader of the root's `memory.stat` with enough pending) and
//! every read of the run's own cgroup (the worker's and this process's).
//!
//! The instance is private, so no other tracer's settings change; it is
//! registered with [`crate::cleanup`] and removed on every way out. Hosts
//! without the tracepoint or tracefs give `Err` from [`FlushTrace::start`]
//! and the run goes on without it.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cleanup;
use crate::error::HostError;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Set by the cleanup after a signal ([`stop_all_readers`]): every reader
/// closes its `trace_pipe` (an open pipe keeps `rmdir` of the instance
/// busy).
static STOP_ALL: AtomicBool = AtomicBool::new(false);

/// How long [`remove_instance`] waits for the readers to let the instance
/// go (20 ms steps): a reader sleeps 20 ms between reads.
const RMDIR_TRIES: u32 = 100;

/// One `memcg_flush_stats` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushEvent {
    /// `CLOCK_MONOTONIC`, ns (microsecond resolution).
    pub t_ns: u64,
    /// The task that called it.
    pub pid: i32,
    /// The memory cgroup's id (its directory's inode number).
    pub memcg_id: u64,
    /// Its pending update count at the call.
    pub stats_updates: i64,
    /// The periodic work's forced flush.
    pub force: bool,
    /// Above the threshold.
    pub needs_flush: bool,
}

impl FlushEvent {
    /// Whether the call flushed.
    pub fn flushed(&self) -> bool {
        self.force || self.needs_flush
    }
}

/// What the reader thread collected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The events, in time order.
    pub events: Vec<FlushEvent>,
    /// Events the ring buffer lost (the kernel's `[LOST n EVENTS]`).
    pub lost: u64,
}

/// A trace instance recording flushes while it lives.
#[derive(Debug)]
pub struct FlushTrace {
    instance: PathBuf,
    stop: Arc<AtomicBool>,
    /// The time of the last flush of the root seen so far (ns; 0: none).
    last_root_flush: Arc<AtomicU64>,
    reader: Option<JoinHandle<Result<Recorded, String>>>,
    removed: bool,
}

/// The memory cgroup id the tracepoint reports for the cgroup at `dir`.
pub fn memcg_id(dir: &Path) -> Result<u64, HostError> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|e| HostError::cgroup(dir, "stat", e))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("{}: write {value:?}: {e}", path.display()))
}

impl FlushTrace {
    /// Starts recording the flushes of the root (id `root_id`) and every
    /// flush attempt on `memcg_id`.
    pub fn start(root_id: u64, memcg_id: u64) -> Result<Self, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("klab-fidelity-{}-{n}", std::process::id());
        let mount =
            std::env::temp_dir().join(format!("klab-fidelity-tracefs-{}-{n}", std::process::id()));
        let instance = mount.join("instances").join(&name);
        cleanup::register_trace(&instance);
        let mut t = FlushTrace {
            instance,
            stop: Arc::new(AtomicBool::new(false)),
            last_root_flush: Arc::new(AtomicU64::new(0)),
            reader: None,
            removed: false,
        };
        std::fs::create_dir(&mount).map_err(|e| format!("{}: mkdir: {e}", mount.display()))?;
        let out = Command::new(crate::swap::program("mount"))
            .args(["-t", "tracefs", "nodev"])
            .arg(&mount)
            .output()
            .map_err(|e| format!("mount tracefs: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tracefs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::fs::create_dir(&t.instance)
            .map_err(|e| format!("{}: mkdir: {e}", t.instance.display()))?;
        let ev = t.instance.join("events/memcg/memcg_flush_stats");
        if !ev.is_dir() {
            return Err("this kernel has no memcg:memcg_flush_stats tracepoint (6.14+)".into());
        }
        write(&t.instance.join("trace_clock"), "mono")?;
        write(&t.instance.join("buffer_size_kb"), "4096")?;
        write(
            &ev.join("filter"),
            &format!("(id == {root_id} && (force == 1 || needs_flush == 1)) || id == {memcg_id}"),
        )?;
        write(&ev.join("enable"), "1")?;
        let pipe = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nonblock())
            .open(t.instance.join("trace_pipe"))
            .map_err(|e| format!("trace_pipe: {e}"))?;
        let stop = Arc::clone(&t.stop);
        let last = Arc::clone(&t.last_root_flush);
        t.reader = Some(
            std::thread::Builder::new()
                .name("klab-fidelity-trace".into())
                .spawn(move || read_pipe(pipe, &stop, root_id, &last))
                .map_err(|e| format!("trace reader thread: {e}"))?,
        );
        Ok(t)
    }

    /// When the root was last seen flushed (`CLOCK_MONOTONIC` ns), if at
    /// all: every cgroup's statistics were current then.
    pub fn last_root_flush_ns(&self) -> Option<u64> {
        Some(self.last_root_flush.load(Ordering::Acquire)).filter(|&t| t > 0)
    }

    /// Stops recording, removes the instance and returns what it saw.
    pub fn finish(mut self) -> Result<Recorded, String> {
        let _ = write(
            &self.instance.join("events/memcg/memcg_flush_stats/enable"),
            "0",
        );
        self.stop.store(true, Ordering::Release);
        let r = match self.reader.take() {
            Some(h) => h
                .join()
                .map_err(|_| "the trace reader panicked".to_owned())?,
            None => Err("no reader".to_owned()),
        };
        self.removed = true;
        let rm = remove_instance(&self.instance).map_err(|e| e.to_string());
        cleanup::unregister(&self.instance);
        let mut rec = r?;
        rm?;
        rec.events.sort_by_key(|e| e.t_ns);
        Ok(rec)
    }
}

impl Drop for FlushTrace {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        if !self.removed {
            let _ = remove_instance(&self.instance);
            cleanup::unregister(&self.instance);
        }
    }
}

/// `O_NONBLOCK`, so the reader can notice it is asked to stop.
fn libc_o_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

/// Reads `trace_pipe` until asked to stop and the pipe is empty.
fn read_pipe(
    mut pipe: std::fs::File,
    stop: &AtomicBool,
    root_id: u64,
    last_root_flush: &AtomicU64,
) -> Result<Recorded, String> {
    let mut rec = Recorded::default();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => {
                if stop.load(Ordering::Acquire) || STOP_ALL.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    take_line(&String::from_utf8_lossy(&line), &mut rec);
                    if let Some(e) = rec.events.last()
                        && e.memcg_id == root_id
                        && e.flushed()
                    {
                        last_root_flush.fetch_max(e.t_ns, Ordering::AcqRel);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Acquire) || STOP_ALL.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("trace_pipe: {e}")),
        }
    }
    if !pending.is_empty() {
        take_line(&String::from_utf8_lossy(&pending), &mut rec);
    }
    Ok(rec)
}

fn take_line(line: &str, rec: &mut Recorded) {
    if let Some(lost) = lost_events(line) {
        rec.lost += lost;
    } else if let Some(e) = parse_line(line) {
        rec.events.push(e);
    }
}

/// `CPU:1 [LOST 12 EVENTS]`.
fn lost_events(line: &str) -> Option<u64> {
    let rest = line.split_once("[LOST ")?.1;
    rest.split_once(' ')?.0.parse().ok()
}

/// One line of the trace:
/// `  kworker/u8:2-38  [000] .....  10168.992073: memcg_flush_stats: memcg_id=1 stats_updates=192 force=1 needs_flush=1`.
pub fn parse_line(line: &str) -> Option<FlushEvent> {
    let (left, right) = line.split_once(": memcg_flush_stats: ")?;
    let ts = left.trim_end().trim_end_matches(':');
    let ts = ts.rsplit(char::is_whitespace).next()?;
    let (secs, frac) = ts.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ns: u64 = format!("{frac:0<9}").parse().ok()?;
    let t_ns = secs.parse::<u64>().ok()?.checked_mul(1_000_000_000)? + frac_ns;
    let task = left[..left.rfind('[')?].trim_end();
    let pid = task.rsplit_once('-')?.1.parse().ok()?;
    let mut e = FlushEvent {
        t_ns,
        pid,
        memcg_id: 0,
        stats_updates: 0,
        force: false,
        needs_flush: false,
    };
    let mut seen = 0;
    for kv in right.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        match k {
            "memcg_id" => e.memcg_id = v.parse().ok()?,
            "stats_updates" => e.stats_updates = v.parse().ok()?,
            "force" => e.force = v == "1",
            "needs_flush" => e.needs_flush = v == "1",
            _ => continue,
        }
        seen += 1;
    }
    (seen == 4).then_some(e)
}

/// Disables the event, removes the instance, unmounts its tracefs and
/// removes the mount point; parts already gone are not errors.
///
/// `rmdir` is retried while the instance is busy: after a signal a run's
/// reader may still hold its `trace_pipe` open until it sees
/// [`stop_all_readers`] (tracefs instances live in the one tracefs
/// superblock, so one left here would outlive the mount).
pub(crate) fn remove_instance(instance: &Path) -> Result<(), HostError> {
    let _ = std::fs::write(instance.join("events/memcg/memcg_flush_stats/enable"), "0");
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(instance) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(16) && tries < RMDIR_TRIES => {
                // EBUSY: a reader has not closed its pipe yet.
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(HostError::files(instance, "rmdir trace instance", e)),
        }
    }
    let Some(mount) = instance.parent().and_then(Path::parent) else {
        return Ok(());
    };
    if is_mounted(mount) {
        let out = Command::new(crate::swap::program("umount"))
            .arg(mount)
            .output()
            .map_err(|e| HostError::files(mount, "umount", e))?;
        if !out.status.success() {
            return Err(HostError::files(
                mount,
                "umount",
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            ));
        }
    }
    match std::fs::remove_dir(mount) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HostError::files(mount, "rmdir", e)),
    }
}

/// Tells every reader of the process to close its pipe and end (the
/// cleanup after a signal: the runs will not finish).
pub(crate) fn stop_all_readers() {
    STOP_ALL.store(true, Ordering::Release);
}

fn is_mounted(dir: &Path) -> bool {
    let Ok(m) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let want = dir.to_string_lossy();
    m.lines()
        .any(|l| l.split_whitespace().nth(1).is_some_and(|d| d == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_parse_with_their_task_clock_and_fields() {
        let l = "    kworker/u8:2-38      [000] ..... 10168.992073: memcg_flush_stats: memcg_id=1 stats_updates=192 force=1 needs_flush=1";
        assert_eq!(
            parse_line(l),
            Some(FlushEvent {
                t_ns: 10_168_992_073_000,
                pid: 38,
                memcg_id: 1,
                stats_updates: 192,
                force: true,
                needs_flush: true,
            })
        );
        let worker = "  a b-c-4242  [001] d..1. 5.000000001: memcg_flush_stats: memcg_id=26963 stats_updates=0 force=0 needs_flush=0";
        let e = parse_line(worker).unwrap();
        assert_eq!((e.pid, e.t_ns, e.flushed()), (4242, 5_000_000_001, false));
        for bad in [
            "# tracer: nop",
            "x-1 [000] ..... 1.5: memcg_flush_stats: memcg_id=1 force=1 needs_flush=1",
            "x-1 [000] ..... 1.x: memcg_flush_stats: memcg_id=1 stats_updates=1 force=1 needs_flush=1",
            "x-1 [000] ..... 1.5: other_event: memcg_id=1",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
        assert_eq!(lost_events("CPU:1 [LOST 12 EVENTS]"), Some(12));
        assert_eq!(lost_events("x-1 [000] 1.0: memcg_flush_stats: ..."), None);
    }
}
