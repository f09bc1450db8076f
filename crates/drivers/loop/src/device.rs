//! One loop device of the host, bound to a backing file for as long as
//! the guard lives.
//!
//! ```text
//!   LoopDevice::attach(backing, Attach { direct_io, block_size })
//!     open /dev/loop-control, LOOP_CTL_GET_FREE -> N
//!     open /dev/loopN, LOOP_CONFIGURE(fd, block_size,
//!          LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR [| LO_FLAGS_DIRECT_IO])
//!     LOOP_GET_STATUS64: which flags the kernel kept (direct I/O falls back
//!          to buffered when the backing file cannot do it, silently)
//!   drop / detach(): LOOP_CLR_FD, close; detach() waits for the unbinding
//! ```
//!
//! # Nothing is left attached
//!
//! The device is bound with `LO_FLAGS_AUTOCLEAR`: the kernel unbinds it at
//! the last close of `/dev/loopN` (drivers/block/loop.c, `lo_release()`).
//! The guard holds the only descriptor the run opens besides its worker's
//! (a forked child that exits or is killed before the guard drops), so:
//!
//! * on success and on an error, the guard's `Drop` unbinds it
//!   (`LOOP_CLR_FD`) and closes it;
//! * on a panic, unwinding runs the same `Drop`;
//! * on `SIGINT`/`SIGTERM`/`SIGHUP`, klab-fidelity's signal thread removes
//!   the run's cgroup and data directory and ends the process; the
//!   process's exit closes its descriptors, and autoclear unbinds the
//!   device;
//! * even `SIGKILL`, which runs nothing, leaves no device bound, for the
//!   same reason (only the backing file's directory would stay).
//!
//! [`attached_to`] lists the devices bound to a file, from sysfs
//! (`/sys/block/loopN/loop/backing_file`); the crate's tests use it to
//! check each way out.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use klab_sys::loop_dev::{
    self, Config, LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO, LO_FLAGS_READ_ONLY,
};

use crate::error::LoopError;

/// The loop control device.
pub const LOOP_CONTROL: &str = "/dev/loop-control";

/// How long [`LoopDevice::detach`] waits for the kernel to unbind.
const DETACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Free devices [`LoopDevice::attach`] tries before giving up (another
/// process may bind the device it was given first).
const ATTACH_TRIES: usize = 16;

/// How the device reads its backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attach {
    /// Ask for `LO_FLAGS_DIRECT_IO`.
    pub direct_io: bool,
    /// The device's logical block size (direct I/O needs at least the
    /// backing filesystem's block size; 4096 serves both modes).
    pub block_size: u32,
}

/// A loop device bound to a backing file, read-only, with autoclear.
#[derive(Debug)]
pub struct LoopDevice {
    number: u32,
    dev: Option<File>,
    backing: PathBuf,
    direct_io: bool,
}

impl LoopDevice {
    /// Binds `backing` (open, at `path`) to a free loop device.
    ///
    /// # Errors
    /// The control device cannot be opened, or `LOOP_CONFIGURE` fails (a
    /// bad block size, a backing file the driver refuses).
    pub fn attach(
        backing: BorrowedFd<'_>,
        path: &Path,
        how: Attach,
    ) -> Result<LoopDevice, LoopError> {
        let control =
            File::open(LOOP_CONTROL).map_err(|e| LoopError::device(LOOP_CONTROL, "open", e))?;
        let cfg = Config {
            block_size: how.block_size,
            flags: LO_FLAGS_READ_ONLY
                | LO_FLAGS_AUTOCLEAR
                | if how.direct_io { LO_FLAGS_DIRECT_IO } else { 0 },
            file_name: path.display().to_string(),
        };
        for _ in 0..ATTACH_TRIES {
            let n = loop_dev::get_free(control.as_fd())
                .map_err(|e| LoopError::device(LOOP_CONTROL, "LOOP_CTL_GET_FREE", e))?;
            let node = device_path(n);
            let dev = File::open(&node).map_err(|e| LoopError::device(&node, "open", e))?;
            match loop_dev::configure(dev.as_fd(), backing, &cfg) {
                Ok(()) => {
                    let st = loop_dev::get_status(dev.as_fd())
                        .map_err(|e| LoopError::device(&node, "LOOP_GET_STATUS64", e))?;
                    return Ok(LoopDevice {
                        number: n,
                        dev: Some(dev),
                        backing: path.to_owned(),
                        direct_io: st.lo_flags & LO_FLAGS_DIRECT_IO != 0,
                    });
                }
                // Taken between GET_FREE and CONFIGURE: ask again.
                Err(e) if e.raw_os_error() == Some(libc_ebusy()) => continue,
                Err(e) => return Err(LoopError::device(&node, "LOOP_CONFIGURE", e)),
            }
        }
        Err(LoopError::device(
            LOOP_CONTROL,
            "find a free loop device",
            std::io::Error::other(format!(
                "every one of {ATTACH_TRIES} free devices was taken before it could be bound"
            )),
        ))
    }

    /// The device number (`N` of `/dev/loopN`).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> PathBuf {
        device_path(self.number)
    }

    /// The backing file.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Whether the kernel reads the backing file with direct I/O
    /// (`LO_FLAGS_DIRECT_IO` kept after `LOOP_CONFIGURE`).
    pub fn direct_io(&self) -> bool {
        self.direct_io
    }

    /// The open device (the page cache of `/dev/loopN` lives while it is
    /// open: the kernel drops a block device's cached pages at its last
    /// close, `blkdev_flush_mapping()`).
    pub fn file(&self) -> &File {
        self.dev.as_ref().expect("open until dropped")
    }

    /// Unbinds the device and waits (bounded) until the kernel says it is
    /// free.
    ///
    /// # Errors
    /// `LOOP_CLR_FD` failed, or the device still names the backing file
    /// after [`DETACH_TIMEOUT`].
    pub fn detach(mut self) -> Result<(), LoopError> {
        let node = self.path();
        let dev = self.dev.take().expect("open until dropped");
        let cleared = loop_dev::clear(dev.as_fd());
        drop(dev);
        cleared.map_err(|e| LoopError::device(&node, "LOOP_CLR_FD", e))?;
        let deadline = Instant::now() + DETACH_TIMEOUT;
        while attached_to(&self.backing).contains(&self.number) {
            if Instant::now() >= deadline {
                return Err(LoopError::device(
                    &node,
                    "detach",
                    std::io::Error::other(format!(
                        "still bound to {} after {DETACH_TIMEOUT:?}",
                        self.backing.display()
                    )),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Some(dev) = self.dev.take() {
            // Autoclear unbinds at the close even if this fails.
            let _ = loop_dev::clear(dev.as_fd());
        }
    }
}

fn libc_ebusy() -> i32 {
    rustix::io::Errno::BUSY.raw_os_error()
}

/// `/dev/loopN`.
pub fn device_path(n: u32) -> PathBuf {
    PathBuf::from(format!("/dev/loop{n}"))
}

/// The loop devices bound to `file` now, from
/// `/sys/block/loop*/loop/backing_file` (which holds the path the kernel
/// resolved, with " (deleted)" appended once the file is unlinked).
pub fn attached_to(file: &Path) -> Vec<u32> {
    let want = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let want = want.display().to_string();
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("loop")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        let bound = text.trim_end_matches('\n');
        let bound = bound.strip_suffix(" (deleted)").unwrap_or(bound);
        if bound == want {
            out.push(n);
        }
    }
    out.sort_unstable();
    out
}

/// Whether this host can bind loop devices: root, and a loop driver with
/// `/dev/loop-control`. `Err` says what is missing, in a sentence.
pub fn probe() -> Result<(), String> {
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "not root (euid {}): binding a loop device needs CAP_SYS_ADMIN",
            euid.as_raw()
        ));
    }
    File::open(LOOP_CONTROL)
        .map(drop)
        .map_err(|e| format!("{LOOP_CONTROL}: {e} (no loop driver?)"))
}
