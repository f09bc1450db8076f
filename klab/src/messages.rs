//! How klab speaks to its user: errors on standard error as `klab: ...`,
//! output on standard output, where a closed pipe is not an error.

use std::io::{self, Write};

/// Prints an error line: `klab: message`.
pub(crate) fn error(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "klab: {msg}");
}

/// Writes to standard output. A broken pipe (`klab list | head -1`) ends
/// the program successfully, as it does for other Unix tools.
pub(crate) fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        error(format_args!("standard output: {e}"));
        std::process::exit(2);
    }
}
