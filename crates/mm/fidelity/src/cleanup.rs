//! What a run leaves on the host while it runs, and how it is removed
//! when the program is interrupted.
//!
//! Every cgroup, data directory, swap file and trace mount a run creates
//! is registered here from before it exists until after it is gone. The
//! normal ways out (return, error, panic) remove them through their
//! guards' `Drop` ([`crate::MemCgroup`], [`crate::files::DataDir`],
//! [`crate::swap::SwapFile`], [`crate::trace::FlushTrace`]). A signal that
//! would end the program (`SIGINT`, `SIGTERM`, `SIGHUP`) runs no
//! destructor, so [`install_signal_handlers`] starts a thread that, on such
//! a signal, removes everything registered ([`cleanup_all`]: kill the
//! cgroup's tasks, `rmdir` it, turn the swap file off and delete it,
//! remove the trace instance and unmount, delete the directory) and then
//! lets the signal take its default course (the process ends as the
//! signal's default would end it). `SIGKILL` cannot be caught: a run
//! killed that way leaves its `klab-fidelity-<pid>-<n>` cgroup (and swap
//! file, if one was on) behind.
//!
//! While that thread cleans up, the thread that was running the workload
//! sees its worker killed and its files vanish; it must not report that as
//! an error and exit first (the process would end before the cleanup
//! does). So every public entry of a run calls [`park_if_interrupted`]
//! before it returns: once a signal has been caught, the caller's thread
//! waits there for the signal thread to end the process.
//!
//! Locking: one mutex guards the registry; it is held only to copy or
//! change the list, never across a removal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Set by the signal thread before it cleans up. A: atomic.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether a terminating signal has been caught.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Acquire)
}

/// Once a signal has been caught, never returns: the signal thread is
/// removing the run's cgroup and files and will end the process.
pub fn park_if_interrupted() {
    while interrupted() {
        std::thread::park();
    }
}

/// Registered cgroups and directories. L: the mutex.
static LIVE: Mutex<Live> = Mutex::new(Live {
    cgroups: BTreeSet::new(),
    dirs: BTreeSet::new(),
    swaps: BTreeSet::new(),
    traces: BTreeSet::new(),
});

struct Live {
    cgroups: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    swaps: BTreeSet<PathBuf>,
    /// Trace instances (`<mount>/instances/<name>`).
    traces: BTreeSet<PathBuf>,
}

fn live() -> std::sync::MutexGuard<'static, Live> {
    // A panic elsewhere while holding the lock leaves a usable set.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register_cgroup(path: &Path) {
    live().cgroups.insert(path.to_owned());
}

pub(crate) fn register_dir(path: &Path) {
    live().dirs.insert(path.to_owned());
}

pub(crate) fn register_swap(path: &Path) {
    live().swaps.insert(path.to_owned());
}

pub(crate) fn register_trace(instance: &Path) {
    live().traces.insert(instance.to_owned());
}

pub(crate) fn unregister(path: &Path) {
    let mut l = live();
    l.cgroups.remove(path);
    l.dirs.remove(path);
    l.swaps.remove(path);
    l.traces.remove(path);
}

/// Paths registered now (cgroups, then directories).
pub fn registered() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let l = live();
    (
        l.cgroups.iter().cloned().collect(),
        l.dirs.iter().cloned().collect(),
    )
}

/// Swap files and trace instances registered now.
pub fn registered_host_settings() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let l = live();
    (
        l.swaps.iter().cloned().collect(),
        l.traces.iter().cloned().collect(),
    )
}

/// Removes every registered cgroup (killing its tasks), trace instance
/// (and its mount), swap file and directory; returns how many were
/// removed.
pub fn cleanup_all() -> usize {
    let (cgroups, dirs) = registered();
    let (swaps, traces) = registered_host_settings();
    let mut n = 0;
    for c in cgroups {
        if crate::cgroup::remove_dir(&c).is_ok() {
            n += 1;
        }
        unregister(&c);
    }
    if !traces.is_empty() {
        crate::trace::stop_all_readers();
    }
    for t in traces {
        if crate::trace::remove_instance(&t).is_ok() {
            n += 1;
        }
        unregister(&t);
    }
    for s in swaps {
        if crate::swap::remove_file(&s).is_ok() {
            n += 1;
        }
        unregister(&s);
    }
    for d in dirs {
        if std::fs::remove_dir_all(&d).is_ok() {
            n += 1;
        }
        unregister(&d);
    }
    n
}

/// Starts (once per process) the thread that cleans up on `SIGINT`,
/// `SIGTERM` and `SIGHUP` and then ends the process as the signal would.
pub fn install_signal_handlers() -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("klab-fidelity-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        INTERRUPTED.store(true, Ordering::Release);
                        cleanup_all();
                        let _ = signal_hook::low_level::emulate_default_handler(sig);
                        // Signals whose default is to continue: end anyway,
                        // as an interrupted run.
                        std::process::exit(128 + sig);
                    }
                })
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(std::io::Error::other)
}
