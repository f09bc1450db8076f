//! Runs real programs on klab's SLUB with LD_PRELOAD: git, python3, a
//! larson-style C benchmark (threads, cross-thread frees, fork) and a gcc
//! compile, checking their output against a run without the preload.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

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
    let bin = dir.path().join("larson");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/larson.c");
    run(
        Command::new("gcc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&bin)
            .arg(src),
        false,
    );
    let a = run(&mut Command::new(&bin), false);
    let b = run(&mut Command::new(&bin), true);
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&b.stdout).starts_with("larson ok "));
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
