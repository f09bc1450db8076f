//! `klab lro` end to end: every shared capture in both modes, the written
//! capture read back by klab and (when installed) by tshark, corrupt input.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use klab_lro::stream::Streams;
use klab_lro::{Capture, wire};

fn pcaps() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        here.join("../../shared/data/pcaps"),
        here.join("../../../shared/data/pcaps"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .expect("shared/data/pcaps beside the repository");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 10);
    v
}

fn klab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .output()
        .unwrap()
}

fn tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "tshark not installed: skipping the tshark cross-checks (.ci/setup.d/lro.sh installs it)"
        );
    }
    ok
}

fn tshark_out(args: &[&str]) -> String {
    let o = Command::new("tshark")
        .arg("-n")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What tshark makes of a capture.
struct Dissection {
    /// Frames read.
    frames: usize,
    /// Frames with an expert error (malformed, exception).
    errors: usize,
    /// Segments called spurious retransmissions.
    spurious: usize,
    /// Frames (0-based, in file order) with a TCP or IPv4 checksum tshark
    /// calls wrong; a partial one (CHECKSUM_PARTIAL) is wrong to tshark.
    bad_checksums: Vec<usize>,
    /// Per-direction payload as tshark reassembles it (`-z follow,tcp,raw`):
    /// (both endpoints, bytes sent by the lower one, bytes sent by the other).
    follow: Vec<(String, String, String)>,
}

fn dissect(path: &Path) -> Dissection {
    let p = path.to_str().unwrap();
    let a = tshark_out(&[
        "-r",
        p,
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.analysis.spurious_retransmission",
        "-e",
        "_ws.expert.severity",
    ]);
    let rows: Vec<Vec<&str>> = a.lines().map(|l| l.split('\t').collect()).collect();
    let streams = rows
        .iter()
        .filter_map(|r| r[0].parse::<u32>().ok())
        .max()
        .map_or(0, |m| m + 1);
    // PI_ERROR is 0x00800000.
    let errors = rows.iter().filter(|r| r[2] == "8388608").count();
    let spurious = rows.iter().filter(|r| !r[1].is_empty()).count();
    let b = tshark_out(&[
        "-r",
        p,
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "tcp.checksum.status",
        "-e",
        "ip.checksum.status",
    ]);
    let bad_checksums = b
        .lines()
        .enumerate()
        .filter(|(_, l)| l.split('\t').any(|f| f == "0"))
        .map(|(i, _)| i)
        .collect();
    let mut args = vec!["-r".to_owned(), p.to_owned(), "-q".to_owned()];
    for i in 0..streams {
        args.push("-z".to_owned());
        args.push(format!("follow,tcp,raw,{i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = tshark_out(&args);
    let mut follow = Vec::new();
    for block in text.split("Follow: tcp,raw").skip(1) {
        let mut nodes = (String::new(), String::new());
        let (mut x, mut y) = (String::new(), String::new());
        for l in block.lines() {
            if let Some(n) = l.strip_prefix("Node 0: ") {
                nodes.0 = n.to_owned();
            } else if let Some(n) = l.strip_prefix("Node 1: ") {
                nodes.1 = n.to_owned();
            } else if l.starts_with('=') || l.starts_with("Filter:") || l.is_empty() {
                continue;
            } else if let Some(d) = l.strip_prefix('\t') {
                y.push_str(d.trim());
            } else {
                x.push_str(l.trim());
            }
        }
        // Order the endpoints so that input and output agree even if the
        // stream numbering or the first speaker differ.
        if nodes.0 <= nodes.1 {
            follow.push((format!("{} {}", nodes.0, nodes.1), x, y));
        } else {
            follow.push((format!("{} {}", nodes.1, nodes.0), y, x));
        }
    }
    follow.sort();
    Dissection {
        frames: rows.len(),
        errors,
        spurious,
        bad_checksums,
        follow,
    }
}

#[test]
fn every_capture_aggregates_to_a_valid_capture_with_identical_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let have_tshark = tshark();
    // One thread per capture: most of the time is tshark starting up.
    std::thread::scope(|scope| {
        for input in pcaps() {
            let dir = dir.path();
            scope.spawn(move || check_capture(&input, dir, have_tshark));
        }
    });
}

fn check_capture(input: &Path, dir: &Path, have_tshark: bool) {
    {
        let name = input.file_stem().unwrap().to_string_lossy().into_owned();
        let mut dissected = None;
        for mode in ["lro", "gro"] {
            let ext = if name.contains("irc") {
                "pcapng"
            } else {
                "pcap"
            };
            let out = dir.join(format!("{name}-{mode}.{ext}"));
            let o = klab(&[
                "lro",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--mode",
                mode,
            ]);
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "{name} {mode}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                stdout.contains("stream payloads              identical"),
                "{stdout}"
            );
            // Read back by klab: same flows, same bytes, time goes forward.
            let a = std::fs::read(input).unwrap();
            let b = std::fs::read(&out).unwrap();
            let ca = Capture::parse(&a).unwrap();
            let cb = Capture::parse(&b).unwrap();
            assert_eq!(ca.dlt, cb.dlt);
            let link = ca.link().unwrap();
            let sa = Streams::of(link, ca.packets.iter().map(|p| p.data));
            let sb = Streams::of(link, cb.packets.iter().map(|p| p.data));
            sa.compare(&sb).unwrap();
            assert!(cb.packets.len() <= ca.packets.len());
            assert!(cb.packets.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
            // Every TCP packet klab wrote itself (not an input frame passed
            // through) carries a full, valid checksum.
            let inputs: HashSet<&[u8]> = ca.packets.iter().map(|p| p.data).collect();
            for (i, p) in cb.packets.iter().enumerate() {
                if inputs.contains(p.data) {
                    continue;
                }
                let seg = wire::parse(link, p.data).unwrap();
                assert!(
                    matches!(
                        wire::check_tcp_checksum(&seg, &[p.data]),
                        wire::TcpCsum::Full(_)
                    ),
                    "{name} {mode}: merged frame {} has no valid checksum",
                    i + 1
                );
            }
            if !have_tshark {
                continue;
            }
            // tshark opens it without errors, reads every frame, finds
            // valid checksums on every packet klab wrote itself (a merged
            // packet gets a full checksum even when its segments carried
            // partial ones; the wrong ones are input frames passed through
            // unchanged), no data written after the ACKs it caused, and
            // reassembles the same streams.
            let dout = dissect(&out);
            let din = dissected.get_or_insert_with(|| dissect(input));
            assert_eq!(dout.frames, cb.packets.len(), "{name} {mode}");
            assert!(
                dout.errors <= din.errors,
                "{name} {mode}: {} expert errors",
                dout.errors
            );
            assert_eq!(dout.spurious, 0, "{name} {mode}: spurious retransmissions");
            for &i in &dout.bad_checksums {
                assert!(
                    inputs.contains(cb.packets[i].data),
                    "{name} {mode}: frame {} has a checksum tshark calls wrong and is not an input frame",
                    i + 1
                );
            }
            assert!(
                dout.bad_checksums.len() <= din.bad_checksums.len(),
                "{name} {mode}: checksums"
            );
            assert_eq!(din.follow.len(), dout.follow.len(), "{name} {mode}");
            for (x, y) in din.follow.iter().zip(&dout.follow) {
                assert!(x == y, "{name} {mode}: tshark follow of {} differs", x.0);
            }
        }
    }
}

#[test]
fn a_truncated_capture_is_an_error_with_its_offset_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = pcaps()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("no_crlf"))
        .unwrap();
    let bytes = std::fs::read(src).unwrap();
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, &bytes[..5000]).unwrap();
    let out = dir.path().join("out.pcap");
    let o = klab(&["lro", bad.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.pcap: offset 3637: packet record truncated"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
}

#[test]
fn not_a_capture_and_bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.pcap");
    std::fs::write(&f, b"hello, this is not a capture").unwrap();
    let o = klab(&["lro", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("offset 0: not a pcap or pcapng file"));
    let p = &pcaps()[0];
    let o = klab(&[
        "lro",
        p.to_str().unwrap(),
        "--mode",
        "gro",
        "--max-aggr",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = klab(&["lro", p.to_str().unwrap(), "--max-desc", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("max_desc must be between 1"));
}

#[test]
fn max_aggr_and_max_desc_change_the_counts() {
    let p = pcaps()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("example"))
        .unwrap();
    let count = |args: &[&str]| -> u64 {
        let mut a = vec!["lro", p.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = klab(&a);
        assert!(o.status.success());
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.lines()
            .find_map(|l| l.strip_prefix("packets out"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let base = count(&[]);
    assert!(count(&["--max-aggr", "2"]) > base);
    assert!(count(&["--max-desc", "1"]) > base);
    assert_eq!(count(&["--lookup", "linear"]), base);
}
