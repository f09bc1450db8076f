//! Errors, one enum per family of operations. Each carries the errno the
//! kernel would give (`errno()`), and converts into `std::io::Error`.

use std::io;
use std::path::PathBuf;

use rustix::io::Errno;

/// Creating a kernel pipe.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The kernel refused `O_DIRECT` in `pipe2` (Linux before 3.4).
    #[error("this kernel has no packet-mode pipes (pipe2 with O_DIRECT: EINVAL; needs Linux 3.4)")]
    PacketModeUnsupported,
    /// Any other failure of a system call.
    #[error("{call}: {errno}")]
    Sys {
        /// The call that failed.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
}

impl PipeError {
    /// The errno behind the error.
    pub fn errno(&self) -> Errno {
        match self {
            PipeError::PacketModeUnsupported => Errno::INVAL,
            PipeError::Sys { errno, .. } => *errno,
        }
    }
}

impl From<PipeError> for io::Error {
    fn from(e: PipeError) -> io::Error {
        io::Error::new(io::Error::from(e.errno()).kind(), e)
    }
}

/// A page-based direct I/O request or its file.
#[derive(Debug, thiserror::Error)]
pub enum DioError {
    /// A field of the request breaks the file's direct-I/O alignment
    /// (`EINVAL`, as the kernel's `->direct_IO` would return).
    #[error(
        "dio_args.{field} = {value} is not a multiple of {align} (the file's direct-I/O {what} alignment)"
    )]
    Misaligned {
        /// The field: `offset`, `length` or `first_page_off`.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The alignment it must have.
        align: u64,
        /// Which alignment: `offset` (file offsets and lengths) or `memory`.
        what: &'static str,
    },
    /// The request is inconsistent (`EINVAL`): segments that do not match
    /// the pages, an offset past the first page.
    #[error("dio_args.{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// Opening or inspecting the file failed.
    #[error("{path}: {call}: {errno}")]
    File {
        /// The file.
        path: PathBuf,
        /// The call that failed.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// The transfer itself failed.
    #[error("{call} at file offset {offset}: {errno}")]
    Io {
        /// `preadv` or `pwritev`.
        call: &'static str,
        /// Where in the file.
        offset: u64,
        /// Its errno.
        errno: Errno,
    },
}

impl DioError {
    /// The errno behind the error.
    pub fn errno(&self) -> Errno {
        match self {
            DioError::Misaligned { .. } | DioError::Invalid { .. } => Errno::INVAL,
            DioError::File { errno, .. } | DioError::Io { errno, .. } => *errno,
        }
    }
}

impl From<DioError> for io::Error {
    fn from(e: DioError) -> io::Error {
        io::Error::new(io::Error::from(e.errno()).kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misalignment_names_the_field_and_keeps_einval() {
        let e = DioError::Misaligned {
            field: "offset",
            value: 1000,
            align: 512,
            what: "offset",
        };
        assert_eq!(
            e.to_string(),
            "dio_args.offset = 1000 is not a multiple of 512 (the file's direct-I/O offset alignment)"
        );
        assert_eq!(e.errno(), Errno::INVAL);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    }
}
