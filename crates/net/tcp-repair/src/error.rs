//! Errors, one enum per family of operations. A failing system call or
//! socket option is always reported with its name, the value it was given
//! where that matters, and the errno by name.

use std::fmt;
use std::io;

/// An errno, printed by name (`EPERM`) and meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of an I/O error (0 if it has none).
    pub fn of(e: &io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(0))
    }

    /// The symbolic name, for the errnos TCP repair meets.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            22 => "EINVAL",
            27 => "EFBIG",
            32 => "EPIPE",
            88 => "ENOTSOCK",
            92 => "ENOPROTOOPT",
            95 => "EOPNOTSUPP",
            98 => "EADDRINUSE",
            99 => "EADDRNOTAVAIL",
            103 => "ECONNABORTED",
            104 => "ECONNRESET",
            106 => "EISCONN",
            107 => "ENOTCONN",
            110 => "ETIMEDOUT",
            111 => "ECONNREFUSED",
            115 => "EINPROGRESS",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = io::Error::from_raw_os_error(self.0).to_string();
        let text = text.split(" (os error").next().unwrap_or("");
        match self.name() {
            Some(n) => write!(f, "{n} ({text})"),
            None => write!(f, "errno {} ({text})", self.0),
        }
    }
}

/// A failing socket option, ioctl or socket call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {errno}{hint}")]
pub struct SockoptError {
    /// The call, with the option's name and value
    /// (`setsockopt(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)`).
    pub call: String,
    /// What the kernel returned.
    pub errno: Errno,
    /// A hint, with its leading separator, or empty.
    pub hint: &'static str,
}

impl SockoptError {
    /// Wraps an I/O error from `call`.
    pub fn new(call: impl Into<String>, e: &io::Error) -> Self {
        let errno = Errno::of(e);
        let call = call.into();
        let hint = if errno.0 == 1 && call.contains("TCP_REPAIR,") {
            "; repair mode needs CAP_NET_ADMIN in the socket's network namespace"
        } else {
            ""
        };
        SockoptError { call, errno, hint }
    }

    /// True when the failure is a missing capability (EPERM or EACCES on
    /// `TCP_REPAIR`).
    pub fn is_permission(&self) -> bool {
        (self.errno.0 == 1 || self.errno.0 == 13) && self.call.contains("TCP_REPAIR,")
    }
}

/// Why an image could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The image ends inside a field.
    #[error("byte {offset}: {field}: truncated, {needed} bytes needed")]
    Truncated {
        /// Where the field starts.
        offset: u64,
        /// The field.
        field: &'static str,
        /// Its size.
        needed: u64,
    },
    /// A field holds a value the format does not allow.
    #[error("byte {offset}: {field}: {reason}")]
    Invalid {
        /// Where the field (or record) starts.
        offset: u64,
        /// The field.
        field: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// Reading the image failed.
    #[error("byte {offset}: {message}")]
    Io {
        /// Bytes read before the failure.
        offset: u64,
        /// The I/O error.
        message: String,
    },
}

/// Why a dump failed. The socket is left as it was found (repair mode
/// off) unless the dump succeeded.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A socket option or ioctl failed.
    #[error(transparent)]
    Sockopt(#[from] SockoptError),
    /// The socket is not a TCP connection a dump can save.
    #[error("socket state {state}: {reason}")]
    State {
        /// The state's name or number.
        state: String,
        /// Why it cannot be dumped.
        reason: &'static str,
    },
    /// A queue did not hold the bytes its length said.
    #[error("{queue} queue: peeked {got} bytes, SIOC length said {expected}")]
    QueueMismatch {
        /// `recv` or `send`.
        queue: &'static str,
        /// The length from the ioctl.
        expected: u32,
        /// What recv(MSG_PEEK) returned.
        got: usize,
    },
}

/// Why a restore failed. No socket is left behind: the half-built socket
/// is closed while still in repair mode, which sends nothing.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A socket option or call failed.
    #[error(transparent)]
    Sockopt(#[from] SockoptError),
    /// The image holds a connection this restore does not rebuild.
    #[error("{local} -> {remote}: state {state}: {reason}")]
    Unsupported {
        /// Local address.
        local: std::net::SocketAddr,
        /// Remote address.
        remote: std::net::SocketAddr,
        /// The state's name.
        state: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// `connect` in repair mode found the 4-tuple taken.
    #[error(
        "connect {local} -> {remote}: {errno}: the connection's 4-tuple is still owned by a \
         socket in this network namespace (the original, or a restore already done); close it \
         (in repair mode), stop its owner, or restore into another namespace"
    )]
    TupleInUse {
        /// Local address.
        local: std::net::SocketAddr,
        /// Remote address.
        remote: std::net::SocketAddr,
        /// What connect returned.
        errno: Errno,
    },
}

/// Why the network lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// `nft` could not be started.
    #[error(
        "cannot run {tool}: {source} (install nftables; klab's .ci/setup.d/tcp-repair.sh does)"
    )]
    Spawn {
        /// The program.
        tool: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `nft` ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Nft {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
}

/// Why a socket could not be taken from another process.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// `pidfd_open` or `pidfd_getfd` failed.
    #[error("{call} (pid {pid}, fd {fd}): {errno}{hint}")]
    Syscall {
        /// `pidfd_open` or `pidfd_getfd`.
        call: &'static str,
        /// The process.
        pid: i32,
        /// Its descriptor.
        fd: i32,
        /// What the kernel returned.
        errno: Errno,
        /// A hint, with its separator.
        hint: &'static str,
    },
    /// The descriptor is not a TCP socket.
    #[error("pid {pid} fd {fd}: not a connected TCP socket ({detail})")]
    NotTcp {
        /// The process.
        pid: i32,
        /// Its descriptor.
        fd: i32,
        /// What it is.
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_prints_name_and_meaning() {
        assert_eq!(Errno(1).to_string(), "EPERM (Operation not permitted)");
        assert_eq!(Errno(27).to_string(), "EFBIG (File too large)");
    }

    #[test]
    fn repair_eperm_hints_at_the_capability() {
        let e = SockoptError::new(
            "setsockopt(TCP_REPAIR, TCP_REPAIR_ON)",
            &io::Error::from_raw_os_error(1),
        );
        assert!(e.is_permission());
        assert_eq!(
            e.to_string(),
            "setsockopt(TCP_REPAIR, TCP_REPAIR_ON): EPERM (Operation not permitted); \
             repair mode needs CAP_NET_ADMIN in the socket's network namespace"
        );
    }
}
