//! A swap file of the run's own: created, formatted (`mkswap`) and enabled
//! (`swapon`) for the anonymous-memory workloads, disabled (`swapoff`) and
//! deleted after them.
//!
//! ```text
//!   <dir>/klab-fidelity-swap-<pid>-<n>     fallocate(size), mode 0600
//!     mkswap <file>                          the swap header
//!     swapon <file>                          /proc/swaps lists it
//!   ... the anonymous workloads run ...
//!     swapoff <file>                         pages still out come back first
//!     unlink
//! ```
//!
//! Swap is a host-wide setting: while the file is on, any process of the
//! host may swap to it, and the 6.x refault test of every memory cgroup
//! counts the anonymous lists. So a run turns it on only around its
//! anonymous workloads, and the guard ([`SwapFile`]'s `Drop`) and the
//! signal cleanup ([`crate::cleanup`]) turn it off and delete it on every
//! way out; only `SIGKILL` can leave it on. The data directory's
//! filesystem must take swap files (ext4, xfs: yes; tmpfs: refused, like
//! the data files; btrfs needs no-copy-on-write files).
//!
//! Size: the kernel treats swap more than half full as scarce
//! (`vm_swap_full()`: swap-cache pages are then freed at swap-in), so the
//! file is sized by the caller to twice what the workload can swap out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cleanup;
use crate::error::HostError;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The prefix of every swap file a run creates.
pub const NAME_PREFIX: &str = "klab-fidelity-swap-";

/// A swap file, enabled; disabled and deleted on drop.
#[derive(Debug)]
pub struct SwapFile {
    path: PathBuf,
    bytes: u64,
    removed: bool,
}

/// The util-linux programs, found on `PATH` or in `/usr/sbin`, `/sbin`.
pub(crate) fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn run(path: &Path, prog: &str, args: &[&std::ffi::OsStr]) -> Result<(), HostError> {
    let out = Command::new(program(prog))
        .args(args)
        .output()
        .map_err(|e| HostError::files(path, format!("run {prog}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(HostError::files(
        path,
        prog.to_owned(),
        std::io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    ))
}

impl SwapFile {
    /// Creates a swap file of `bytes` (rounded up to whole 4 KiB pages) in
    /// `dir` and enables it.
    pub fn create(dir: &Path, bytes: u64) -> Result<Self, HostError> {
        let bytes = bytes.div_ceil(4096).max(16) * 4096;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{NAME_PREFIX}{}-{n}", std::process::id()));
        // Registered before it exists: an interrupt from here on removes it.
        cleanup::register_swap(&path);
        let mut s = SwapFile {
            path,
            bytes,
            removed: false,
        };
        s.make()?;
        Ok(s)
    }

    fn make(&mut self) -> Result<(), HostError> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| HostError::files(&self.path, "create", e))?;
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, self.bytes)
            .map_err(|e| HostError::files(&self.path, "fallocate", e.into()))?;
        f.sync_all()
            .map_err(|e| HostError::files(&self.path, "fsync", e))?;
        drop(f);
        run(&self.path, "mkswap", &[self.path.as_os_str()])?;
        run(&self.path, "swapon", &[self.path.as_os_str()])
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Disables and deletes it.
    pub fn remove(mut self) -> Result<(), HostError> {
        self.removed = true;
        let r = remove_file(&self.path);
        cleanup::unregister(&self.path);
        r
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_file(&self.path);
            cleanup::unregister(&self.path);
        }
    }
}

/// Whether `path` is listed in `/proc/swaps` (its first column, with the
/// kernel's octal escapes for spaces and the like).
pub fn is_enabled(path: &Path) -> bool {
    let Ok(swaps) = std::fs::read_to_string("/proc/swaps") else {
        return false;
    };
    swaps_lists(&swaps, path)
}

fn swaps_lists(swaps: &str, path: &Path) -> bool {
    let want = path.to_string_lossy();
    swaps.lines().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|f| f.replace("\\040", " ") == want)
    })
}

/// `swapoff` (when the file is on) and delete; a file already gone is not
/// an error.
pub(crate) fn remove_file(path: &Path) -> Result<(), HostError> {
    if is_enabled(path) {
        run(path, "swapoff", &[path.as_os_str()])?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HostError::files(path, "remove", e)),
    }
}

/// Whether this host can enable a swap file: root and the util-linux
/// programs. `Err` says what is missing.
pub fn probe() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root: swapon needs root".into());
    }
    for p in ["mkswap", "swapon", "swapoff"] {
        if !program(p).is_absolute() {
            return Err(format!("{p} (util-linux) is not installed"));
        }
    }
    if !Path::new("/proc/swaps").exists() {
        return Err("no /proc/swaps: the kernel has no swap support".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_swaps_is_read_by_its_first_column_with_escapes() {
        let swaps = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                     /var/tmp/a\\040b file 1024 0 -2\n\
                     /dev/vdb partition 99 0 -3\n";
        assert!(swaps_lists(swaps, Path::new("/var/tmp/a b")));
        assert!(swaps_lists(swaps, Path::new("/dev/vdb")));
        assert!(!swaps_lists(swaps, Path::new("/var/tmp/a")));
        assert!(!swaps_lists(swaps, Path::new("Filename")), "the header");
    }
}
