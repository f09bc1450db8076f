//! Runs real programs on klab's SLUB with LD_PRELOAD: git, python3, a
//! larson-style C benchmark (threads, cross-thread frees, fork), a
//! thread-churn stress (threads created and joined over and over, exiting
//! with objects in their caches, forks from a multithreaded parent) and a
//! gcc compile, checking their output against a run without the preload;
//! and the same library on SLAB and SLOB (`KLAB_SLAB=slab|slob`): a
//! program that asks the library which allocator it ran on, git, python3
//! and the churn stress; and the library's own unwinder (build.rs): no
//! `libgcc_s` mapped beside it, a C++ program's exceptions still unwind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds the cdylib once (release, in its own target directory: the
/// outer cargo holds the lock on the test's) and returns its path.
fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        // target/<profile>/deps/preload-xxxx -> target/
        let target = exe
            .ancestors()
            .nth(3)
            .expect("target dir")
            .join("preload-build");
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "klab-slab-preload",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the preload library failed");
        let lib = target.join("release/libklab_slab_preload.so");
        assert!(lib.exists(), "{} not built", lib.display());
        lib
    })
    .clone()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn run(cmd: &mut Command, preload: bool) -> Output {
    if preload {
        cmd.env("LD_PRELOAD", library());
    }
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} (preload {preload}) failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn git_version_runs_on_the_preload() {
    if !have("git") {
        eprintln!("skipped: no git");
        return;
    }
    let a = run(Command::new("git").arg("--version"), false);
    let b = run(Command::new("git").arg("--version"), true);
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&b.stdout).starts_with("git version"));
}

/// The library carries its own unwinder (build.rs): a program that does
/// not load `libgcc_s` itself (`cat`) still does not map it with the
/// preload, and the preload is mapped (so the check saw its process).
#[test]
fn the_preload_does_not_map_libgcc_s() {
    let out = run(Command::new("cat").arg("/proc/self/maps"), true);
    let maps = String::from_utf8_lossy(&out.stdout);
    assert!(
        maps.contains("libklab_slab_preload.so"),
        "the preload is not in cat's maps:\n{maps}"
    );
    assert!(
        !maps.contains("libgcc_s"),
        "libgcc_s is mapped beside the preload:\n{maps}"
    );
}

/// A C++ program's exceptions unwind through its own `libgcc_s` while
/// malloc is the preload's, whose statically linked unwinder stays local.
#[test]
fn cxx_exceptions_unwind_on_the_preload() {
    if !have("g++") {
        eprintln!("skipped: no g++");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("throw");
    let src = format!("{}/tests/data/throw.cc", env!("CARGO_MANIFEST_DIR"));
    run(
        Command::new("g++")
            .args(["-O2", "-Wall", "-o"])
            .arg(&bin)
            .arg(src),
        false,
    );
    let a = run(&mut Command::new(&bin), false);
    let b = run(&mut Command::new(&bin), true);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(String::from_utf8_lossy(&b.stdout), "caught 10000\n");
}

#[test]
fn python_allocation_heavy_script_runs_on_the_preload() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let script = r#"
import threading, hashlib
d = {i: str(i) * 5 for i in range(200000)}
l = [list(range(i % 200)) for i in range(20000)]
out = []
def work(k):
    out.append(sum(len(bytes(i % 700)) for i in range(40000)) + k)
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
s = sorted(d.values())[:3]
print(len(d), sum(map(len, l)), sorted(out), s, hashlib.sha256("".join(d.values()).encode()).hexdigest())
"#;
    let a = run(Command::new("python3").args(["-c", script]), false);
    let b = run(Command::new("python3").args(["-c", script]), true);
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
}

#[test]
fn larson_in_c_with_threads_and_fork_runs_on_the_preload() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "larson");
    let a = run(&mut Command::new(&bin), false);
    let b = run(&mut Command::new(&bin), true);
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&b.stdout).starts_with("larson ok "));
}

/// Runs `cmd` to its end or until `limit` has passed; a run that outlives
/// it is killed, and the test fails saying so (a hang is a failure with a
/// message, never a test that does not return).
fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what}: still running after {limit:?}, killed (a hang)\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Compiles one of the C programs in tests/data.
fn compile(dir: &Path, name: &str) -> PathBuf {
    let bin = dir.join(name);
    let src = format!("{}/tests/data/{name}.c", env!("CARGO_MANIFEST_DIR"));
    run(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&bin)
            .arg(src),
        false,
    );
    bin
}

#[test]
fn thread_churn_with_forks_runs_100_times_on_the_preload_in_every_era() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "churn");
    // churn ROUNDS THREADS OPS SEED WATCHDOG_S: 24 rounds of 2 threads
    // hand over batches of 1 to 6 slabs' worth of 8-32-byte blocks (the
    // allocator that kept a Vec under a list lock hung here 5 runs of 5);
    // its own watchdog ends a hung run with exit status 3 before ours
    // kills it.
    let args = |seed: u32| ["24", "2", "1000", &seed.to_string(), "30"].map(String::from);
    let expected: Vec<Vec<u8>> = (1..=5)
        .map(|seed| {
            let out = run(Command::new(&bin).args(args(seed)), false).stdout;
            assert!(String::from_utf8_lossy(&out).starts_with("churn ok "));
            out
        })
        .collect();
    let lib = library();
    // The default era (3.2 slabs, 6.18 sheaves) 100 times; the page's
    // 2.6.24 era 10 times.
    for (era, runs) in [(None, 100), (Some("2.6.24"), 10)] {
        for i in 0..runs {
            let seed = 1 + i % 5;
            let mut cmd = Command::new(&bin);
            cmd.args(args(seed)).env("LD_PRELOAD", &lib);
            if let Some(e) = era {
                cmd.env("KLAB_SLUB_ERA", e);
            }
            let what = format!("churn run {i} (seed {seed}, era {era:?})");
            let out = run_bounded(&mut cmd, Duration::from_secs(60), &what);
            assert!(
                out.status.success(),
                "{what} failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&expected[seed as usize - 1]),
                "{what}: output differs from glibc's"
            );
        }
    }
}

#[test]
fn gcc_compiles_a_program_on_the_preload() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nstatic int fib(int n){return n<2?n:fib(n-1)+fib(n-2);}\nint main(void){printf(\"fib %d\\n\", fib(20));return 0;}\n",
    )
    .unwrap();
    let bin = dir.path().join("hello");
    // gcc, cc1 and the assembler and linker all run on the preload.
    run(
        Command::new("gcc").args(["-O2", "-o"]).arg(&bin).arg(&src),
        true,
    );
    let out = run(&mut Command::new(&bin), false);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fib 6765\n");
}

/// Runs `cmd` on the preload with `KLAB_SLAB=which`.
fn run_on(cmd: &mut Command, which: &str) -> Output {
    cmd.env("KLAB_SLAB", which);
    run(cmd, true)
}

#[test]
fn klab_slab_picks_slab_slob_or_slub_and_the_program_sees_which() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "which");
    let glibc = String::from_utf8(run(&mut Command::new(&bin), false).stdout).unwrap();
    let (head, sum) = glibc.split_once('\n').unwrap();
    assert_eq!(head, "allocator none");
    for (which, line) in [
        ("slab", "allocator SLAB slab-slabs some slob-pages none"),
        ("slob", "allocator SLOB slab-slabs none slob-pages some"),
        ("slub", "allocator SLUB slab-slabs none slob-pages none"),
    ] {
        let out = String::from_utf8(run_on(&mut Command::new(&bin), which).stdout).unwrap();
        assert_eq!(out, format!("{line}\n{sum}"), "KLAB_SLAB={which}");
    }
    // Unset: SLUB.
    let out = String::from_utf8(run(&mut Command::new(&bin), true).stdout).unwrap();
    assert!(out.starts_with("allocator SLUB "), "{out}");
}

#[test]
fn an_unknown_klab_slab_value_ends_the_program_with_a_message() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "which");
    let out = Command::new(&bin)
        .env("LD_PRELOAD", library())
        .env("KLAB_SLAB", "slub2")
        .output()
        .expect("spawn which");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "klab-slab: environment KLAB_SLAB=slub2: expected slab, slub or slob\n"
    );
}

#[test]
fn git_and_python_run_on_slab_and_slob() {
    let script =
        "d = {i: str(i) * 3 for i in range(100000)}\nprint(len(d), sum(map(len, d.values())))";
    for which in ["slab", "slob"] {
        if have("git") {
            let a = run(Command::new("git").arg("--version"), false);
            let b = run_on(Command::new("git").arg("--version"), which);
            assert_eq!(a.stdout, b.stdout, "git on {which}");
        } else {
            eprintln!("skipped git: no git");
        }
        if have("python3") {
            let a = run(Command::new("python3").args(["-c", script]), false);
            let b = run_on(Command::new("python3").args(["-c", script]), which);
            assert_eq!(a.stdout, b.stdout, "python3 on {which}");
        } else {
            eprintln!("skipped python3: no python3");
        }
    }
}

#[test]
fn thread_churn_with_forks_runs_on_slab_and_slob() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "churn");
    let args = |seed: u32| ["24", "2", "1000", &seed.to_string(), "30"].map(String::from);
    let expected: Vec<Vec<u8>> = (1..=5)
        .map(|seed| run(Command::new(&bin).args(args(seed)), false).stdout)
        .collect();
    let lib = library();
    // SLAB 30 times (threads exit with full arrays, forks mid-refill),
    // SLOB 5 times.
    for (which, runs) in [("slab", 30), ("slob", 5)] {
        for i in 0..runs {
            let seed = 1 + i % 5;
            let mut cmd = Command::new(&bin);
            cmd.args(args(seed))
                .env("LD_PRELOAD", &lib)
                .env("KLAB_SLAB", which);
            let what = format!("churn run {i} (seed {seed}, KLAB_SLAB={which})");
            let out = run_bounded(&mut cmd, Duration::from_secs(60), &what);
            assert!(
                out.status.success(),
                "{what} failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&expected[seed as usize - 1]),
                "{what}: output differs from glibc's"
            );
        }
    }
}
