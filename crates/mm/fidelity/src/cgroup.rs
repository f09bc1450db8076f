//! A cgroup v1 memory cgroup of the host, made for one run and removed
//! after it.
//!
//! ```text
//!   /sys/fs/cgroup/memory/                    the v1 memory hierarchy (root)
//!     klab-fidelity-<pid>-<n>/                [`MemCgroup::create`]: mkdir
//!       memory.limit_in_bytes                 [`MemCgroup::set_limit`]
//!       memory.force_empty                    [`MemCgroup::force_empty`]
//!       cgroup.procs                          [`MemCgroup::attach`]: the worker's pid
//!       memory.stat, memory.failcnt, ...      [`MemCgroup::stat`], [`MemCgroup::read_u64`]
//!                                             rmdir on drop ([`MemCgroup::remove`])
//! ```
//!
//! The kernel's side (mm/memcontrol.c and mm/memcontrol-v1.c in 6.x): a
//! page-cache page is charged to the memory cgroup of the process that
//! reads it in (`mem_cgroup_charge()` at `filemap_add_folio()`); a charge
//! past `memory.limit_in_bytes` fails (`memory.failcnt` counts it) and
//! reclaims from the cgroup's own LRU lists (`try_to_free_mem_cgroup_pages()`)
//! before it is retried. `memory.stat` shows the cgroup's LRU list sizes
//! and its event counters (`workingset_refault_file`, `pgmajfault`,
//! `pgpgin`, ...), which is what a run reads before and after.
//!
//! Removal: a cgroup with tasks cannot be removed, so [`MemCgroup::remove`]
//! first kills every process left in it (only the run's own worker is ever
//! put there), then `rmdir`s it, retrying while the killed tasks exit. Pages
//! still charged to it do not stop `rmdir`; the kernel reparents them. A
//! [`MemCgroup`] dropped without [`MemCgroup::remove`] does the same, so an
//! error or a panic between creation and the end of a run leaves nothing
//! behind; [`crate::cleanup`] does it when the program is interrupted.
//!
//! Seed: 000_2fa08a6962ebae3f.txt, "Controlling memory use in containers".

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::error::HostError;

/// Where the cgroup v1 memory controller is mounted on most systems.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup/memory";

/// The prefix of every cgroup a run creates: `klab-fidelity-<pid>-<n>`.
pub const NAME_PREFIX: &str = "klab-fidelity-";

/// How long removal waits for killed tasks to leave the cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this host can run a workload in a memory cgroup of `root`: the
/// cgroup v1 memory controller mounted there, root privileges, and
/// `cachestat(2)`. `Err` says what is missing, in a sentence.
pub fn probe(root: &Path) -> Result<(), String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|e| format!("cannot read /proc/self/mounts: {e}"))?;
    match mount_type(&mounts, root) {
        Some(Mount::MemoryV1) => {}
        Some(Mount::Other(fstype)) => {
            return Err(format!(
                "{} is a {fstype} mount, not the cgroup v1 memory controller",
                root.display()
            ));
        }
        None => {
            return Err(format!(
                "no cgroup v1 memory controller is mounted at {}",
                root.display()
            ));
        }
    }
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "not root (euid {}): creating a memory cgroup needs root",
            euid.as_raw()
        ));
    }
    rustix::fs::access(root, rustix::fs::Access::WRITE_OK)
        .map_err(|e| format!("{} is not writable: {e}", root.display()))?;
    if !klab_sys::cachestat::available() {
        return Err("this kernel has no cachestat(2) (Linux 6.5+), the residency probe".into());
    }
    Ok(())
}

/// What is mounted at a cgroup root.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mount {
    /// A cgroup v1 hierarchy with the memory controller.
    MemoryV1,
    /// Something else (cgroup2, tmpfs, a v1 hierarchy of other
    /// controllers): its type and options.
    Other(String),
}

/// The last mount at `root` in a `/proc/self/mounts` text (later mounts
/// hide earlier ones).
fn mount_type(mounts: &str, root: &Path) -> Option<Mount> {
    let root = root.to_str()?;
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_dev, dir, fstype, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
        (dir == root).then(|| {
            if fstype == "cgroup" && opts.split(',').any(|o| o == "memory") {
                Mount::MemoryV1
            } else {
                Mount::Other(format!("{fstype} ({opts})"))
            }
        })
    })
}

/// `memory.stat`: counter name to value (bytes for sizes, counts for
/// events), in the order the kernel prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemcgStat {
    values: BTreeMap<String, u64>,
}

impl MemcgStat {
    /// Parses `memory.stat` text: one `name value` pair per line, the value
    /// a decimal integer. `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, HostError> {
        let mut values = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let err = |message: String| HostError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let mut f = line.split(' ');
            let (Some(name), Some(value), None) = (f.next(), f.next(), f.next()) else {
                return Err(err(format!("expected \"name value\", found {line:?}")));
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(err(format!("{name:?} is not a counter name")));
            }
            let value: u64 = value
                .parse()
                .map_err(|_| err(format!("{name}: {value:?} is not a decimal integer")))?;
            if values.insert(name.to_owned(), value).is_some() {
                return Err(err(format!("{name} appears twice")));
            }
        }
        Ok(MemcgStat { values })
    }

    /// A counter, if the kernel printed it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }

    /// A counter's growth since `before` (0 when either lacks it).
    pub fn delta(&self, before: &MemcgStat, name: &str) -> u64 {
        match (self.get(name), before.get(name)) {
            (Some(a), Some(b)) => a.saturating_sub(b),
            _ => 0,
        }
    }

    /// Every counter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One memory cgroup of the host, removed when dropped.
#[derive(Debug)]
pub struct MemCgroup {
    path: PathBuf,
    removed: bool,
}

impl MemCgroup {
    /// Creates `root/klab-fidelity-<pid>-<n>` (a name no other run of this
    /// or any other process uses).
    pub fn create(root: &Path) -> Result<Self, HostError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NAME_PREFIX}{}-{n}", std::process::id());
        let path = root.join(name);
        // Registered first: an interrupt between mkdir and the guard's
        // existence still removes it.
        cleanup::register_cgroup(&path);
        if let Err(e) = std::fs::create_dir(&path) {
            cleanup::unregister(&path);
            return Err(HostError::cgroup(&path, "mkdir", e));
        }
        Ok(MemCgroup {
            path,
            removed: false,
        })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup's name (the last component of its path).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn write(&self, file: &str, value: &str) -> Result<(), HostError> {
        let p = self.path.join(file);
        std::fs::write(&p, value).map_err(|e| HostError::cgroup(&p, format!("write {value}"), e))
    }

    /// Reads a control file.
    pub fn read(&self, file: &str) -> Result<String, HostError> {
        let p = self.path.join(file);
        std::fs::read_to_string(&p).map_err(|e| HostError::cgroup(&p, "read", e))
    }

    /// Reads a control file holding one decimal number.
    pub fn read_u64(&self, file: &str) -> Result<u64, HostError> {
        let p = self.path.join(file);
        let text = self.read(file)?;
        text.trim().parse().map_err(|_| HostError::Parse {
            path: p,
            line: 1,
            message: format!("{:?} is not a decimal integer", text.trim()),
        })
    }

    /// Sets `memory.limit_in_bytes` and returns the limit the kernel
    /// applied (rounded up to a whole page).
    pub fn set_limit(&self, bytes: u64) -> Result<u64, HostError> {
        self.write("memory.limit_in_bytes", &bytes.to_string())?;
        self.read_u64("memory.limit_in_bytes")
    }

    /// Drops every page charged to the cgroup (`memory.force_empty`:
    /// reclaim from the cgroup's own lists; nothing outside it is touched).
    pub fn force_empty(&self) -> Result<(), HostError> {
        self.write("memory.force_empty", "0")
    }

    /// Moves a process (all its threads) into the cgroup.
    pub fn attach(&self, pid: i32) -> Result<(), HostError> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The processes in the cgroup.
    pub fn procs(&self) -> Result<Vec<i32>, HostError> {
        let p = self.path.join("cgroup.procs");
        let text = self.read("cgroup.procs")?;
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                l.trim().parse().map_err(|_| HostError::Parse {
                    path: p.clone(),
                    line: i + 1,
                    message: format!("{l:?} is not a pid"),
                })
            })
            .collect()
    }

    /// `memory.stat`.
    pub fn stat(&self) -> Result<MemcgStat, HostError> {
        let text = self.read("memory.stat")?;
        MemcgStat::parse(&self.path.join("memory.stat"), &text)
    }

    /// Kills what is left in the cgroup and removes it.
    pub fn remove(mut self) -> Result<(), HostError> {
        self.removed = true;
        let r = remove_dir(&self.path);
        cleanup::unregister(&self.path);
        r
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_dir(&self.path);
            cleanup::unregister(&self.path);
        }
    }
}

/// Kills every process in the cgroup at `path` and removes it; a cgroup
/// already gone is not an error.
pub(crate) fn remove_dir(path: &Path) -> Result<(), HostError> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path.join("cgroup.procs")) {
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                if Instant::now() >= deadline {
                    return Err(HostError::cgroup(path, "rmdir", e));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(HostError::cgroup(path, "rmdir", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_tell_a_v1_memory_hierarchy_from_others() {
        let mounts = "\
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";
        let m = |p: &str| mount_type(mounts, Path::new(p));
        assert_eq!(m("/sys/fs/cgroup/memory"), Some(Mount::MemoryV1));
        assert_eq!(
            m("/sys/fs/cgroup/unified"),
            Some(Mount::Other("cgroup2 (rw,relatime)".into()))
        );
        assert_eq!(
            m("/sys/fs/cgroup/cpu"),
            Some(Mount::Other("cgroup (rw,relatime,cpu)".into()))
        );
        assert_eq!(m("/sys/fs/cgroup/blkio"), None);
        // "memory" must be a whole option, not part of one.
        let other = "cgroup /x cgroup rw,memory_pressure 0 0\n";
        assert!(matches!(
            mount_type(other, Path::new("/x")),
            Some(Mount::Other(_))
        ));
    }

    #[test]
    fn memory_stat_parses_and_rejects_what_the_kernel_never_writes() {
        let p = Path::new("memory.stat");
        let s =
            MemcgStat::parse(p, "cache 8192\nworkingset_refault_file 3\npgmajfault 0\n").unwrap();
        assert_eq!(s.get("cache"), Some(8192));
        assert_eq!(s.get("workingset_refault_file"), Some(3));
        assert_eq!(s.get("nope"), None);
        let later = MemcgStat::parse(p, "cache 4096\nworkingset_refault_file 10\n").unwrap();
        assert_eq!(later.delta(&s, "workingset_refault_file"), 7);
        assert_eq!(later.delta(&s, "cache"), 0, "sizes that shrink give 0");
        assert_eq!(later.delta(&s, "pgmajfault"), 0, "missing after");
        for (bad, what) in [
            ("cache\n", "expected \"name value\""),
            ("cache 1 2\n", "expected \"name value\""),
            ("cache -1\n", "not a decimal integer"),
            ("Cache 1\n", "not a counter name"),
            ("cache 1\ncache 2\n", "appears twice"),
        ] {
            let e = MemcgStat::parse(p, bad).unwrap_err().to_string();
            assert!(e.contains(what), "{bad:?}: {e}");
            assert!(e.starts_with("memory.stat: line "), "{e}");
        }
    }
}
