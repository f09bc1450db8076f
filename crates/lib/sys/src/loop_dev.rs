//! The loop device's ioctls (drivers/block/loop.c, include/uapi/linux/loop.h):
//! find a free device, bind a backing file to it in one call, read its
//! status, unbind it.
//!
//! ```text
//!   /dev/loop-control  ioctl(LOOP_CTL_GET_FREE)          -> n   (adds /dev/loopN if none is free)
//!   /dev/loopN         ioctl(LOOP_CONFIGURE, &loop_config)       backing fd, block size, flags
//!                        flags: LO_FLAGS_READ_ONLY 1, LO_FLAGS_AUTOCLEAR 4,
//!                               LO_FLAGS_DIRECT_IO 16 (read the backing file with O_DIRECT)
//!                      ioctl(LOOP_GET_STATUS64, &loop_info64)    what is bound, which flags hold
//!                      ioctl(LOOP_CLR_FD)                        unbind (deferred to the last
//!                                                                close while others hold it open)
//! ```
//!
//! `LOOP_CONFIGURE` (Linux 5.8) replaces `LOOP_SET_FD`, `LOOP_SET_STATUS64`
//! and `LOOP_SET_DIRECT_IO`. It accepts `LO_FLAGS_DIRECT_IO` and silently
//! falls back to buffered I/O when the backing file cannot do direct I/O
//! (`loop_update_dio()`), so callers read the flags back with
//! [`get_status`] to learn which mode they got.
//!
//! Neither rustix nor libc wraps these ioctls; the numbers and layouts are
//! the uapi header's (`_IO(0x4C, n)`: `0x4C0A` for `LOOP_CONFIGURE`, `0x4C82`
//! for `LOOP_CTL_GET_FREE`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `LOOP_CLR_FD`.
pub const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
/// `LOOP_GET_STATUS64`.
pub const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
/// `LOOP_CONFIGURE`.
pub const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// `LOOP_CTL_GET_FREE`.
pub const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// `LO_FLAGS_READ_ONLY`.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`: unbind at the last close of the device.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_DIRECT_IO`: the driver reads and writes the backing file with
/// direct I/O (`IOCB_DIRECT`, Linux 4.4).
pub const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `LO_NAME_SIZE`.
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64` (232 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopInfo64 {
    /// `lo_device`: the backing file's device.
    pub lo_device: u64,
    /// `lo_inode`: the backing file's inode number.
    pub lo_inode: u64,
    /// `lo_rdevice`.
    pub lo_rdevice: u64,
    /// `lo_offset`: where the device starts in the file.
    pub lo_offset: u64,
    /// `lo_sizelimit` (0: the whole file).
    pub lo_sizelimit: u64,
    /// `lo_number`: the device's minor number.
    pub lo_number: u32,
    /// `lo_encrypt_type`.
    pub lo_encrypt_type: u32,
    /// `lo_encrypt_key_size`.
    pub lo_encrypt_key_size: u32,
    /// `lo_flags`: the `LO_FLAGS_*` in force.
    pub lo_flags: u32,
    /// `lo_file_name`: the backing file's name, as given at binding
    /// (NUL-terminated, truncated to 63 bytes).
    pub lo_file_name: [u8; LO_NAME_SIZE],
    /// `lo_crypt_name`.
    pub lo_crypt_name: [u8; LO_NAME_SIZE],
    /// `lo_encrypt_key`.
    pub lo_encrypt_key: [u8; 32],
    /// `lo_init`.
    pub lo_init: [u64; 2],
}

impl Default for LoopInfo64 {
    fn default() -> Self {
        LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: 0,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        }
    }
}

impl LoopInfo64 {
    /// The file name the device was bound with (up to the first NUL).
    pub fn file_name(&self) -> String {
        let end = self
            .lo_file_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LO_NAME_SIZE);
        String::from_utf8_lossy(&self.lo_file_name[..end]).into_owned()
    }
}

/// `struct loop_config` (304 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// What to bind with [`configure`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Logical block size of the device in bytes (512 to the page size, a
    /// power of two; 0: the kernel's default of 512). Direct I/O needs it
    /// at least the backing device's logical block size.
    pub block_size: u32,
    /// `LO_FLAGS_*` asked for.
    pub flags: u32,
    /// The name stored in `lo_file_name` (truncated to 63 bytes).
    pub file_name: String,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `ioctl(LOOP_CTL_GET_FREE)` on `/dev/loop-control`: the number of a free
/// loop device (the kernel adds one when none is free).
pub fn get_free(control: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument; the descriptor is open
    // for the call (borrowed).
    let n = cvt(unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _, 0) })?;
    Ok(n as u32)
}

/// `ioctl(LOOP_CONFIGURE)`: binds `backing` to the loop device open as
/// `dev`. Fails with `EBUSY` when the device is bound already, `EINVAL`
/// for a bad block size or flag.
pub fn configure(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>, cfg: &Config) -> io::Result<()> {
    let mut info = LoopInfo64 {
        lo_flags: cfg.flags,
        ..LoopInfo64::default()
    };
    let name = cfg.file_name.as_bytes();
    let n = name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&name[..n]);
    let fd = u32::try_from(backing.as_raw_fd())
        .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let lc = LoopConfig {
        fd,
        block_size: cfg.block_size,
        info,
        reserved: [0; 8],
    };
    // SAFETY: `lc` is a live `repr(C)` value with the uapi layout of
    // `struct loop_config`, which the kernel only reads; both descriptors
    // are open for the call.
    cvt(unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_CONFIGURE as _,
            &lc as *const LoopConfig,
        )
    })?;
    Ok(())
}

/// `ioctl(LOOP_GET_STATUS64)`: `ENXIO` when nothing is bound.
pub fn get_status(dev: BorrowedFd<'_>) -> io::Result<LoopInfo64> {
    let mut info = LoopInfo64::default();
    // SAFETY: `info` is a live `repr(C)` value with the uapi layout of
    // `struct loop_info64`, which the kernel writes whole; the descriptor is
    // open for the call.
    cvt(unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_GET_STATUS64 as _,
            &mut info as *mut LoopInfo64,
        )
    })?;
    Ok(info)
}

/// `ioctl(LOOP_CLR_FD)`: unbinds the device (`ENXIO` when nothing is
/// bound). While another descriptor holds the device open the kernel
/// only marks it for autoclear; it unbinds at the last close.
pub fn clear(dev: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument; the descriptor is open.
    cvt(unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD as _, 0) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn the_structs_have_the_uapi_sizes() {
        assert_eq!(size_of::<LoopInfo64>(), 232);
        assert_eq!(size_of::<LoopConfig>(), 304);
    }

    /// Binds a file, reads it through the device, unbinds it: as root with
    /// `/dev/loop-control`, skipped (with the reason) otherwise.
    #[test]
    fn a_file_bound_reads_back_through_the_device_and_unbinds() {
        let control = match std::fs::File::open("/dev/loop-control") {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipped: /dev/loop-control: {e}");
                return;
            }
        };
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let path = dir.path().join("image");
        let mut f = std::fs::File::create(&path).unwrap();
        let data: Vec<u8> = (0..2 * 4096u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        drop(f);
        let backing = std::fs::File::open(&path).unwrap();
        // Another test may take the same free device first: retry a few times.
        let mut bound = None;
        for _ in 0..8 {
            let n = get_free(control.as_fd()).unwrap();
            let dev = std::fs::File::open(format!("/dev/loop{n}")).unwrap();
            let cfg = Config {
                block_size: 4096,
                flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
                file_name: path.display().to_string(),
            };
            match configure(dev.as_fd(), backing.as_fd(), &cfg) {
                Ok(()) => {
                    bound = Some((n, dev));
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
                Err(e) => panic!("LOOP_CONFIGURE: {e}"),
            }
        }
        let (n, mut dev) = bound.expect("a free loop device within 8 tries");
        let st = get_status(dev.as_fd()).unwrap();
        assert_eq!(st.lo_number, n);
        assert_eq!(st.lo_flags & LO_FLAGS_READ_ONLY, LO_FLAGS_READ_ONLY);
        assert_eq!(st.file_name(), path.display().to_string());
        let mut back = vec![0u8; data.len()];
        dev.read_exact(&mut back).unwrap();
        assert_eq!(back, data);
        clear(dev.as_fd()).unwrap();
        drop(dev);
        // Unbound: the status is ENXIO (the kernel may finish the unbinding
        // just after the last close; wait for it, bounded).
        let dev = std::fs::File::open(format!("/dev/loop{n}")).unwrap();
        let mut gone = false;
        for _ in 0..200 {
            match get_status(dev.as_fd()) {
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    gone = true;
                    break;
                }
                Ok(st) if st.file_name() != path.display().to_string() => {
                    // Another test bound the device meanwhile.
                    gone = true;
                    break;
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        assert!(
            gone,
            "/dev/loop{n} still bound to {} after 2 s",
            path.display()
        );
    }
}
