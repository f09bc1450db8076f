//! Every way out of a run leaves no loop device bound to its image: a
//! finished run, an error, a panic, and SIGTERM to a process that holds a
//! bound device. The measurements of a run are checked on the way.
//!
//! These need root, the loop driver and the cgroup v1 memory controller
//! (CI runs as root); without them each test says why and returns.

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use klab_loop::{Attach, LoopDevice, LoopError, RunConfig, Session, attached_to, probe};

const IMAGE_PAGES: u64 = 1024;

fn host() -> Option<RunConfig> {
    let cfg = RunConfig::new(IMAGE_PAGES, 64 << 20);
    match probe(&cfg.root) {
        Ok(()) => Some(cfg),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// Waits (bounded) for the kernel to finish unbinding at the last close.
#[track_caller]
fn assert_unbound(image: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !attached_to(image).is_empty() {
        assert!(
            Instant::now() < deadline,
            "loop devices {:?} still bound to {} after 5 s",
            attached_to(image),
            image.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 256 pages read twice: the first pass misses, the second hits. Buffered,
/// each page is then in both page caches; with direct I/O only in the
/// device's.
#[test]
fn a_run_caches_twice_buffered_once_direct_and_unbinds() {
    let Some(cfg) = host() else { return };
    let s = Session::new(&cfg).unwrap();
    let pages: Vec<u64> = (0..256).chain(0..256).collect();
    let b = s.run(&cfg, false, &pages).unwrap();
    assert_unbound(s.image());
    assert!(!b.direct_io);
    assert_eq!((b.reads, b.hits), (512, 256));
    assert_eq!(
        (b.device_cached, b.backing_cached, b.twice),
        (256, 256, 256),
        "{b:?}"
    );
    let d = s.run(&cfg, true, &pages).unwrap();
    assert_unbound(s.image());
    assert!(
        d.direct_io,
        "this kernel refused LO_FLAGS_DIRECT_IO on {}",
        s.image().display()
    );
    assert_eq!((d.reads, d.hits), (512, 256));
    assert_eq!(
        (d.device_cached, d.backing_cached, d.twice),
        (256, 0, 0),
        "{d:?}"
    );
    // The reader's cgroup was charged the device's pages.
    assert!(d.max_usage_bytes >= 256 * 4096, "{d:?}");
    let dir = s.image().parent().unwrap().to_owned();
    s.close().unwrap();
    assert!(!dir.exists());
}

/// An error after the device is bound (the cgroup cannot be made) unbinds
/// it on the way out.
#[test]
fn an_error_after_binding_unbinds() {
    let Some(cfg) = host() else { return };
    let s = Session::new(&cfg).unwrap();
    let mut bad = cfg.clone();
    bad.root = PathBuf::from("/proc/klab-no-such-cgroup-root");
    let e = s.run(&bad, false, &[0, 1, 2]).unwrap_err();
    assert!(matches!(e, LoopError::Host(_)), "{e}");
    assert_unbound(s.image());
    let e = s.run(&cfg, false, &[IMAGE_PAGES]).unwrap_err();
    assert!(e.to_string().contains("past the image"), "{e}");
    s.close().unwrap();
}

/// A panic while a device is bound unbinds it as the stack unwinds.
#[test]
fn a_panic_while_bound_unbinds() {
    let Some(cfg) = host() else { return };
    let s = Session::new(&cfg).unwrap();
    let image = s.image().to_owned();
    let file = std::fs::File::open(&image).unwrap();
    let r = std::panic::catch_unwind(|| {
        let how = Attach {
            direct_io: false,
            block_size: 4096,
        };
        let dev = LoopDevice::attach(file.as_fd(), &image, how).unwrap();
        assert_eq!(attached_to(&image), vec![dev.number()]);
        panic!("on purpose, with /dev/loop{} bound", dev.number());
    });
    assert!(r.is_err());
    drop(file);
    assert_unbound(&image);
    s.close().unwrap();
}

/// The child of [`sigterm_unbinds_and_removes_the_image`]: binds a device
/// to a fresh image, says where, and waits to be killed.
#[test]
fn child_binds_and_waits() {
    if std::env::var_os("KLAB_LOOP_TEST_CHILD").is_none() {
        return;
    }
    let cfg = RunConfig::new(64, 64 << 20);
    let s = Session::new(&cfg).unwrap();
    let file = std::fs::File::open(s.image()).unwrap();
    let how = Attach {
        direct_io: true,
        block_size: 4096,
    };
    let dev = LoopDevice::attach(file.as_fd(), s.image(), how).unwrap();
    println!("bound {} {}", dev.number(), s.image().display());
    std::thread::sleep(Duration::from_secs(60));
    drop(dev);
}

/// SIGTERM to a process holding a bound device: klab-fidelity's signal
/// thread removes the image's directory and ends the process; the
/// device's autoclear unbinds it at the process's last close.
#[test]
fn sigterm_unbinds_and_removes_the_image() {
    if std::env::var_os("KLAB_LOOP_TEST_CHILD").is_some() || host().is_none() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_binds_and_waits",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KLAB_LOOP_TEST_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let (n, image) = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before binding"
        );
        // libtest prints "test child_binds_and_waits ... " before it on
        // the same line.
        if let Some((_, rest)) = line.trim().split_once("bound ") {
            let (n, path) = rest.split_once(' ').unwrap();
            break (n.parse::<u32>().unwrap(), PathBuf::from(path));
        }
    };
    assert_eq!(attached_to(&image), vec![n]);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status}");
    assert_unbound(&image);
    assert!(
        !image.parent().unwrap().exists(),
        "{} left behind",
        image.display()
    );
}
