//! The O_NOSTD story on real processes (seed 001, "O_NOSTD"): a child runs
//! with descriptor 2 closed and opens a data file. With a plain `open` the
//! file gets number 2 and the child's next write to "standard error" lands
//! in it; with [`klab_uapi::fd::open_nostd`] the file gets 3 and the data
//! stays clean.
//!
//! The child is this test binary run again (`child_process` acts only when
//! `KLAB_UAPI_NOSTD_CHILD` is set), started by `sh -c 'exec ... 2>&-'` so
//! descriptor 2 is closed at exec, as in the page's example. Rust's
//! runtime reopens a closed standard descriptor on `/dev/null` before
//! `main` (std's `sanitize_standard_fds`; glibc does this only for
//! set-user-ID programs), which the child reports and the tests pin; it
//! then closes descriptor 2 again, as a daemon does after startup, to be
//! in the page's state.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use klab_sys::stdio::{StdDescriptor, close_std_descriptor};
use rustix::fs::{Mode, OFlags};

const CHILD_ENV: &str = "KLAB_UAPI_NOSTD_CHILD";
const WARNING: &str = "warning: this goes to standard error";

/// The child's side: acts only under `KLAB_UAPI_NOSTD_CHILD=mode:path`.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, path) = spec.split_once(':').expect("mode:path");
    let at_start = std::fs::read_link("/proc/self/fd/2")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("error {e}"));
    close_std_descriptor(StdDescriptor::Stderr).unwrap();
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let mode_bits = Mode::from_raw_mode(0o644);
    let fd = match mode {
        "plain" => rustix::fs::open(path, flags, mode_bits).unwrap(),
        "nostd" => klab_uapi::fd::open_nostd(path, flags, mode_bits).unwrap(),
        other => panic!("unknown mode {other}"),
    };
    let raw = fd.as_raw_fd();
    let mut file = std::fs::File::from(fd);
    file.write_all(b"data\n").unwrap();
    // What a program does when something goes wrong: write to stderr.
    let _ = writeln!(std::io::stderr(), "{WARNING}");
    println!("KLAB fd={raw} start={at_start}");
}

struct ChildReport {
    fd: i32,
    start: String,
    file: String,
}

fn run_child(mode: &str, path: &Path) -> ChildReport {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 2>&-"#)
        .arg(&exe)
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("KLAB ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no report in {stdout:?}"));
    let (fd, start) = line.split_once(' ').unwrap();
    ChildReport {
        fd: fd.strip_prefix("fd=").unwrap().parse().unwrap(),
        start: start.strip_prefix("start=").unwrap().to_owned(),
        file: std::fs::read_to_string(path).unwrap(),
    }
}

#[test]
fn without_nostd_a_write_to_stderr_lands_in_the_opened_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let r = run_child("plain", &path);
    assert_eq!(
        r.start, "/dev/null",
        "Rust's runtime reopened the closed descriptor 2"
    );
    assert_eq!(r.fd, 2, "open took the lowest free number");
    assert_eq!(
        r.file,
        format!("data\n{WARNING}\n"),
        "the warning corrupted the data"
    );
}

#[test]
fn with_nostd_the_file_is_above_two_and_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let r = run_child("nostd", &path);
    assert_eq!(r.start, "/dev/null");
    assert_eq!(r.fd, 3, "moved to the lowest free number above 2");
    assert_eq!(
        r.file, "data\n",
        "the warning went nowhere (EBADF), not into the data"
    );
}
