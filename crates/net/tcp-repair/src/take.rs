//! Taking a socket from another process, and holding that process still
//! while its socket is dumped.
//!
//! `pidfd_open(2)` + `pidfd_getfd(2)` (Linux 5.6) duplicate the target's
//! descriptor into this process: both now refer to the same socket, so
//! repair mode set here is the owner's socket's mode too. The owner is
//! stopped with SIGSTOP for the dump (CRIU freezes the whole task tree
//! with the cgroup freezer for the same reason: a `send` during the dump
//! would change the queues being read) and continued afterwards; its
//! socket is then in repair mode, where its reads fail with EPERM and its
//! writes with EINVAL, and its close sends nothing.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::net::{SocketType, ipproto};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal};

use crate::error::{Errno, TakeError};

fn pid_of(pid: i32, fd: i32) -> Result<Pid, TakeError> {
    Pid::from_raw(pid).ok_or(TakeError::Syscall {
        call: "pidfd_open",
        pid,
        fd,
        errno: Errno(22),
        hint: "; a pid is a positive number",
    })
}

/// Duplicates descriptor `fd` of process `pid` into this process and checks
/// it is a TCP stream socket.
///
/// # Errors
/// The failing call with its errno (ESRCH: no such process; EPERM: not
/// allowed to ptrace it; EBADF: no such descriptor), or a descriptor that
/// is not a TCP socket.
pub fn take_socket(pid: i32, fd: i32) -> Result<OwnedFd, TakeError> {
    let p = pid_of(pid, fd)?;
    let pidfd =
        rustix::process::pidfd_open(p, PidfdFlags::empty()).map_err(|e| TakeError::Syscall {
            call: "pidfd_open",
            pid,
            fd,
            errno: Errno(e.raw_os_error()),
            hint: "",
        })?;
    let sock = rustix::process::pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).map_err(|e| {
        TakeError::Syscall {
            call: "pidfd_getfd",
            pid,
            fd,
            errno: Errno(e.raw_os_error()),
            hint: if e == rustix::io::Errno::PERM {
                "; taking another process's descriptor needs ptrace rights over it (root or the same user with ptrace allowed)"
            } else {
                ""
            },
        }
    })?;
    let not_tcp = |detail: String| TakeError::NotTcp { pid, fd, detail };
    match rustix::net::sockopt::socket_type(sock.as_fd()) {
        Ok(SocketType::STREAM) => {}
        Ok(t) => return Err(not_tcp(format!("socket type {t:?}"))),
        Err(e) => return Err(not_tcp(format!("not a socket: {e}"))),
    }
    match rustix::net::sockopt::socket_protocol(sock.as_fd()) {
        Ok(Some(ipproto::TCP)) => Ok(sock),
        Ok(p) => Err(not_tcp(format!("protocol {p:?}"))),
        Err(e) => Err(not_tcp(format!("{e}"))),
    }
}

/// The network namespace of process `pid`, as a path `setns` and
/// `nsenter` accept.
pub fn netns_of(pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// A process held stopped (SIGSTOP) until the guard drops (SIGCONT).
#[derive(Debug)]
pub struct Stopped {
    pid: Pid,
}

/// Processes this process holds stopped, for [`continue_all`].
static STOPPED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn stopped_list() -> std::sync::MutexGuard<'static, Vec<i32>> {
    STOPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Continues every process this process holds stopped (for a signal
/// handler about to exit). Returns how many.
pub fn continue_all() -> usize {
    let list = std::mem::take(&mut *stopped_list());
    list.iter()
        .filter_map(|&p| Pid::from_raw(p))
        .filter(|&p| rustix::process::kill_process(p, Signal::CONT).is_ok())
        .count()
}

impl Stopped {
    /// Stops `pid` and waits (at most `timeout`) until the kernel reports it
    /// stopped in `/proc/PID/stat`.
    ///
    /// # Errors
    /// The signal could not be sent, or the process did not stop in time
    /// (it is continued again).
    pub fn stop(pid: i32, timeout: Duration) -> Result<Stopped, TakeError> {
        let p = pid_of(pid, -1)?;
        rustix::process::kill_process(p, Signal::STOP).map_err(|e| TakeError::Syscall {
            call: "kill(SIGSTOP)",
            pid,
            fd: -1,
            errno: Errno(e.raw_os_error()),
            hint: "",
        })?;
        stopped_list().push(pid);
        let guard = Stopped { pid: p };
        let deadline = Instant::now() + timeout;
        loop {
            if state(pid).is_some_and(|s| s == 'T' || s == 't') {
                return Ok(guard);
            }
            if Instant::now() >= deadline {
                return Err(TakeError::Syscall {
                    call: "kill(SIGSTOP)",
                    pid,
                    fd: -1,
                    errno: Errno(110),
                    hint: "; the process did not stop in time",
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let raw = self.pid.as_raw_nonzero().get();
        stopped_list().retain(|&p| p != raw);
        let _ = rustix::process::kill_process(self.pid, Signal::CONT);
    }
}

/// The state letter of `/proc/PID/stat` (after the parenthesised name).
fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Waits (at most `timeout`) until process `pid` has exited, so its
/// descriptors are closed. Returns whether it did.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match state(pid) {
            None | Some('Z') | Some('X') => return true,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills process `pid` (SIGKILL) and waits (at most `timeout`) until it is
/// gone, so its descriptors are closed: a socket it held in repair mode is
/// then closed without a word to the peer, and its 4-tuple is free.
///
/// # Errors
/// The signal could not be sent, or the process outlived the timeout.
pub fn kill_and_wait(pid: i32, timeout: Duration) -> Result<(), TakeError> {
    let p = pid_of(pid, -1)?;
    rustix::process::kill_process(p, Signal::KILL).map_err(|e| TakeError::Syscall {
        call: "kill(SIGKILL)",
        pid,
        fd: -1,
        errno: Errno(e.raw_os_error()),
        hint: "",
    })?;
    if wait_gone(pid, timeout) {
        Ok(())
    } else {
        Err(TakeError::Syscall {
            call: "kill(SIGKILL)",
            pid,
            fd: -1,
            errno: Errno(110),
            hint: "; the process did not exit in time",
        })
    }
}
