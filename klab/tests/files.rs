//! What klab reads and what it writes, end to end: bad input is refused
//! before it costs anything (a 2 GiB file of zeros is refused at offset 0
//! by every reader, in an address space a quarter of the file's size),
//! nothing is mistaken for data (an empty trace, a FIFO closed without
//! data, a binary file named `*.txt`), a run whose every experiment fails
//! writes no report, report files get the mode the umask gives, and an
//! output path that is a device is written to, not replaced.

use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use klab_devstats::synth::{self, SynthConfig};
use rand::SeedableRng;

fn klab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("klab runs")
}

/// klab run by `sh` after `setup` (a `ulimit` or `umask` command).
fn klab_after(setup: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sh runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shared(sub: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(sub)
        .join(name)
}

/// The address space klab may use in the zeros test: a quarter of the
/// file. Reading the file whole would need all 2 GiB of it.
const AS_LIMIT_KIB: u64 = 512 << 10;

#[test]
fn a_2gib_file_of_zeros_is_refused_at_offset_0_by_every_reader_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 8] = [
        (
            "z.oracleGeneral.bin",
            &["replay", "--memory", "1MiB"],
            "record 0 at offset 0: obj_size field is 0",
        ),
        (
            "z.vscsi",
            &["replay", "--memory", "1MiB"],
            "record 0 at offset 0: ver field",
        ),
        (
            "z.csv",
            &["replay", "--memory", "1MiB"],
            "line 1 (offset 0): byte 0x00 at offset 0 is not text",
        ),
        (
            "z.txt",
            &["replay", "--memory", "1MiB"],
            "line 1 (offset 0): byte 0x00 at offset 0 is not text",
        ),
        (
            "z.ktr",
            &["replay", "--memory", "1MiB"],
            "line 1 (offset 0): byte 0x00 at offset 0 is not text",
        ),
        (
            "z.pcap",
            &["lro", "--out", "out.pcap"],
            "offset 0: not a pcap or pcapng file",
        ),
        (
            "z.img",
            &["resume"],
            "offset 0: not a klab hibernation image",
        ),
        (
            "z.tcpr",
            &["tcp-repair", "show"],
            "byte 0: magic: not a klab tcp-repair image",
        ),
    ];
    for (name, args, want) in cases {
        let f = std::fs::File::create(dir.path().join(name)).unwrap();
        f.set_len(2 << 30).unwrap();
        let mut argv: Vec<&str> = args.to_vec();
        // The file goes after the subcommand (and its subcommand).
        let at = if args[0] == "tcp-repair" { 2 } else { 1 };
        argv.insert(at, name);
        let o = klab_after(&format!("ulimit -v {AS_LIMIT_KIB}"), dir.path(), &argv);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {err}");
        assert!(err.contains(&format!("{name}: {want}")), "{argv:?}: {err}");
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

#[test]
fn an_input_without_a_request_exits_2_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    std::fs::write(dir.path().join("header.csv"), "time,lbn,size\n").unwrap();
    std::fs::write(dir.path().join("header.ktr"), "klab-trace v1\n\n").unwrap();
    // A binary trace under a text name.
    std::fs::copy(
        shared("traces", "cloudPhysicsIO.oracleGeneral.bin"),
        dir.path().join("binary.txt"),
    )
    .unwrap();
    for (name, want) in [
        ("empty.txt", "empty.txt: the file is empty"),
        ("header.csv", "header.csv: no request in the file"),
        ("header.ktr", "header.ktr: no request in the file"),
        (
            "binary.txt",
            "binary.txt: line 1 (offset 0): byte 0xf7 at offset 1 is not text",
        ),
    ] {
        let o = klab(dir.path(), &["replay", name, "--memory", "1MiB"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
    }
    assert!(
        !dir.path().join("klab-replay").exists(),
        "no report written"
    );
}

#[test]
fn a_fifo_closed_without_data_is_an_empty_trace() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.txt");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o600),
        0,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(["replay", "pipe.txt", "--memory", "1MiB"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Open the writing end once klab has opened the reading end (without
    // a reader, a non-blocking open fails with ENXIO), then close it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&fifo)
        {
            Ok(w) => break w,
            Err(e) if e.raw_os_error() == Some(6) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("klab ended ({status}) before opening the FIFO");
                }
                assert!(
                    Instant::now() < deadline,
                    "klab did not open the FIFO within 60 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("open the FIFO for writing: {e}"),
        }
    };
    drop(writer);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pipe.txt: the file is empty"),
        "{}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("klab-replay").exists(),
        "no report written"
    );
}

const GOOD_SCENARIO: &str = "[machine]\nmemory = \"1MiB\"\nsteps = 500\n\n[[container]]\npath = \"/a\"\nlimit = \"64k\"\n\n[[task]]\nid = 1\ncontainer = \"/a\"\nworkload = \"loop\"\nfile = 1\npages = 40\n";

#[test]
fn a_run_whose_every_experiment_fails_writes_no_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        GOOD_SCENARIO.replace("limit = \"64k\"", "limit = \"64kb\""),
    )
    .unwrap();
    let o = klab(
        dir.path(),
        &[
            "run",
            "memcg",
            "--scenario",
            "bad.toml",
            "--out",
            "out",
            "--json",
            "j.json",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml: line 7: container.limit"), "{err}");
    assert!(
        err.contains("1 of 1 experiment failed (memcg); no report written"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "no report directory");
    assert!(!dir.path().join("j.json").exists(), "no --json file");

    // One of two fails: the other's report is written, the failure listed.
    let o = klab(
        dir.path(),
        &[
            "run",
            "memcg",
            "o-nostd",
            "--quick",
            "--scenario",
            "bad.toml",
            "--out",
            "out",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("1 of 2 experiments failed (memcg); the reports hold the others"),
        "{err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["experiment"], "o-nostd");
    assert!(dir.path().join("out/report.html").is_file());
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn files_klab_writes_get_the_mode_the_umask_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let git = tmp.path().join("r.git");
    let cfg = SynthConfig {
        commits: 20,
        developers: 5,
        employers: 3,
        subsystems: 2,
        ..SynthConfig::default()
    };
    synth::generate(&git, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(3)).unwrap();
    let mut trace = String::from("klab-trace v1\n");
    for i in 0..200u64 {
        trace.push_str(&format!("{i} 0 {} 4096 r\n", i % 50));
    }
    std::fs::write(tmp.path().join("t.ktr"), trace).unwrap();
    let pcap = shared("pcaps", "pcapplusplus-one_tcp_stream_max_seq.pcap");
    for (umask, want) in [("022", 0o644), ("077", 0o600)] {
        let dir = tmp.path().join(umask);
        std::fs::create_dir(&dir).unwrap();
        let runs: [&[&str]; 4] = [
            &[
                "run", "o-nostd", "--quick", "--out", "run", "--json", "run.json",
            ],
            &["replay", "../t.ktr", "--memory", "64KiB", "--out", "replay"],
            &["lro", pcap.to_str().unwrap(), "--out", "lro.pcap"],
            &[
                "devstats",
                git.to_str().unwrap(),
                "--csv",
                "csv",
                "--json",
                "devstats.json",
            ],
        ];
        for args in runs {
            let o = klab_after(&format!("umask {umask}"), &dir, args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
        let mut files = vec![
            dir.join("run/report.json"),
            dir.join("run/report.html"),
            dir.join("run.json"),
            dir.join("replay/report.json"),
            dir.join("replay/report.html"),
            dir.join("lro.pcap"),
            dir.join("devstats.json"),
        ];
        let csvs: Vec<PathBuf> = std::fs::read_dir(dir.join("csv"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(csvs.len() >= 5, "{csvs:?}");
        files.extend(csvs);
        for f in files {
            assert_eq!(
                mode(&f),
                want,
                "{} under umask {umask}: {:o}",
                f.display(),
                mode(&f)
            );
        }
    }
}

#[test]
fn an_output_that_is_a_device_is_written_in_place_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut trace = String::from("klab-trace v1\n");
    for i in 0..100u64 {
        trace.push_str(&format!("{i} 0 {} 4096 r\n", i % 30));
    }
    std::fs::write(dir.path().join("t.ktr"), trace).unwrap();
    for name in ["zero.json", "zero.pcap"] {
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(name)).unwrap();
    }
    let pcap = shared("pcaps", "pcapplusplus-one_tcp_stream_max_seq.pcap");
    let runs: [&[&str]; 2] = [
        &[
            "replay",
            "t.ktr",
            "--memory",
            "64KiB",
            "--json",
            "zero.json",
        ],
        &["lro", pcap.to_str().unwrap(), "--out", "zero.pcap"],
    ];
    for args in runs {
        let o = klab(dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    for name in ["zero.json", "zero.pcap"] {
        let m = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
        assert!(m.file_type().is_symlink(), "{name} replaced by a file");
    }
}
