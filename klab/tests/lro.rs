//! `klab lro` end to end: every shared capture in both modes, the written
//! capture read back by klab and (when installed) by tshark, corrupt input,
//! and a capture the test makes itself on a Linux host (network namespaces,
//! a veth pair, kernel TCP, tcpdump).

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use klab_lro::stream::Streams;
use klab_lro::{Capture, wire};
use klab_tcp_repair::netns::{Netns, privileged, run_tool, unique_name};

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
            scope.spawn(move || {
                check_capture(&input, dir, have_tshark);
            });
        }
    });
}

/// Asserts that `out`'s timestamps are a subsequence of `input`'s: every
/// packet written at the time of an input frame, none earlier than the
/// frame before it in the input.
fn assert_timestamps_follow_input(name: &str, mode: &str, input: &Capture, out: &Capture) {
    let mut it = input.packets.iter().map(|p| p.ts_ns);
    for (i, p) in out.packets.iter().enumerate() {
        assert!(
            it.any(|t| t == p.ts_ns),
            "{name} {mode}: written packet {} has time {} ns, which no input frame at or after the previous one's place has",
            i + 1,
            p.ts_ns
        );
    }
}

/// Runs `klab lro` on `input` in both modes with default flags otherwise
/// and checks the written capture; returns each mode's standard output.
fn check_capture(input: &Path, dir: &Path, have_tshark: bool) -> Vec<String> {
    let mut stdouts = Vec::new();
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
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                !stderr.contains("--trust-checksums"),
                "{name} {mode}: {stderr}"
            );
            stdouts.push(stdout.into_owned());
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
            // Each written packet carries the time of one input frame, in
            // the input's order: a subsequence of the input's timestamps.
            // (A capture taken on a host with several CPUs can itself step
            // back by a few microseconds; the output then steps back with
            // it, never on its own.)
            assert_timestamps_follow_input(&name, mode, &ca, &cb);
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
    stdouts
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

/// The value of a statistics line of `klab lro` (`name   value ...`).
fn stat(stdout: &str, name: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !rest.starts_with("  ") {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A tcpdump process, interrupted (or killed) and reaped on drop, so that
/// a failing test leaves none behind.
struct Tcpdump {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Tcpdump {
    /// Starts tcpdump in `ns` on `dev`, writing every frame to `out`, and
    /// waits (at most 10 s) until it listens.
    fn start(ns: &Netns, dev: &str, out: &Path) -> Tcpdump {
        let net = format!("--net={}", ns.path().display());
        let mut child = Command::new("nsenter")
            .args([
                &net,
                "tcpdump",
                "-i",
                dev,
                "-n",
                "-s",
                "0",
                "-B",
                "65536",
                "-U",
                "--immediate-mode",
            ])
            // Keep root: the output directory is the test's own, mode 0700.
            .args(["-Z", "root", "-w"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsenter tcpdump");
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let seen = Arc::clone(&stderr);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 256];
            let mut told = false;
            while let Ok(n) = err.read(&mut b) {
                if n == 0 {
                    break;
                }
                let mut s = seen.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&b[..n]));
                if !told && s.contains("listening on") {
                    let _ = tx.send(());
                    told = true;
                }
            }
        });
        let t = Tcpdump {
            child: Some(child),
            stderr,
        };
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "tcpdump did not start within 10 s: {}",
            t.stderr.lock().unwrap()
        );
        t
    }

    /// Waits until tcpdump has written out what it received (the file at
    /// `out` stops growing for 500 ms; at most 30 s: an interrupt drops
    /// what is still in its buffer), interrupts it (it closes the file)
    /// and waits for it, at most 10 s; returns what it said.
    fn stop(mut self, out: &Path) -> String {
        let len = || std::fs::metadata(out).map_or(0, |m| m.len());
        let end = Instant::now() + Duration::from_secs(30);
        let mut last = len();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = len();
            if now == last || Instant::now() > end {
                break;
            }
            last = now;
        }
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "tcpdump did not stop within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader thread gets the closing summary just after the exit.
        std::thread::sleep(Duration::from_millis(50));
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Byte `off` of bulk stream `n`.
fn bulk_byte(n: usize, off: usize) -> u8 {
    (off.wrapping_mul(131) ^ (off >> 11) ^ n.wrapping_mul(29)) as u8
}

/// Makes a capture as a Linux host takes one, into `pcap`: two network
/// namespaces joined by a veth pair (`vs` in the sender, `vr` in the
/// receiver) with TCP segmentation, GSO and GRO off and checksum offload
/// on, tcpdump on `vr`, and `sizes.len()` kernel TCP bulk streams from the
/// sender (the last over IPv6, the others over IPv4), each carrying
/// `sizes[i]` bytes, checked on arrival. Returns each stream's source port,
/// and whether tcpdump wrote every packet it received ([`captured_all`]).
/// The namespaces (and with them the veth pair) are deleted on return and
/// when a panic unwinds.
fn host_capture(pcap: &Path, sizes: &[usize]) -> (Vec<u16>, bool) {
    let snd = Netns::create(&unique_name("lro-snd")).unwrap();
    let rcv = Netns::create(&unique_name("lro-rcv")).unwrap();
    run_tool(
        "ip",
        &[
            "link",
            "add",
            "vs",
            "netns",
            snd.name().unwrap(),
            "type",
            "veth",
            "peer",
            "name",
            "vr",
            "netns",
            rcv.name().unwrap(),
        ],
    )
    .unwrap();
    // Loopback-range IPv4 addresses (the namespaces route them), as klab's
    // other test networks; a unique-local IPv6 prefix, without duplicate
    // address detection so that it is usable at once.
    for (ns, dev, me, peer, me6) in [
        (&snd, "vs", "127.78.0.1", "127.78.0.2", "fd6b:6c61:62::1/64"),
        (&rcv, "vr", "127.78.0.2", "127.78.0.1", "fd6b:6c61:62::2/64"),
    ] {
        let net = format!("--net={}", ns.path().display());
        // Each segment its own packet on the wire, as a NIC without
        // offloads would see it; the TCP checksum still left to the device.
        run_tool(
            "nsenter",
            &[
                &net, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "on",
            ],
        )
        .unwrap();
        ns.ip(&["addr", "add", &format!("{me}/32"), "dev", dev])
            .unwrap();
        ns.ip(&["addr", "add", me6, "dev", dev, "nodad"]).unwrap();
        ns.ip(&["link", "set", dev, "up"]).unwrap();
        ns.ip(&["route", "add", &format!("{peer}/32"), "dev", dev])
            .unwrap();
    }
    let l4 = rcv
        .run(|| TcpListener::bind("127.78.0.2:0"))
        .unwrap()
        .unwrap();
    let l6 = rcv
        .run(|| TcpListener::bind("[fd6b:6c61:62::2]:0"))
        .unwrap()
        .unwrap();
    let dump = Tcpdump::start(&rcv, "vr", pcap);
    let mut pairs = Vec::new();
    for i in 0..sizes.len() {
        let l = if i + 1 == sizes.len() { &l6 } else { &l4 };
        let addr = l.local_addr().unwrap();
        let c = snd
            .run(|| TcpStream::connect_timeout(&addr, Duration::from_secs(10)))
            .unwrap()
            .unwrap();
        let (s, _) = l.accept().unwrap();
        for x in [&c, &s] {
            x.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            x.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        pairs.push((c, s));
    }
    let ports: Vec<u16> = pairs
        .iter()
        .map(|(c, _)| c.local_addr().unwrap().port())
        .collect();
    std::thread::scope(|scope| {
        for (n, ((c, s), &size)) in pairs.iter_mut().zip(sizes).enumerate() {
            scope.spawn(move || {
                let data: Vec<u8> = (0..size).map(|k| bulk_byte(n, k)).collect();
                c.write_all(&data).expect("send the bulk stream");
                c.shutdown(Shutdown::Write).unwrap();
            });
            scope.spawn(move || {
                let mut got = Vec::with_capacity(size);
                s.read_to_end(&mut got).expect("receive the bulk stream");
                assert_eq!(got.len(), size, "stream {n}: bytes received");
                assert!(
                    got.iter().enumerate().all(|(k, b)| *b == bulk_byte(n, k)),
                    "stream {n}: received bytes differ from those sent"
                );
            });
        }
    });
    // Close both ends (FIN, ACK) and let the last segments reach tcpdump.
    drop(pairs);
    std::thread::sleep(Duration::from_millis(200));
    let said = dump.stop(pcap);
    eprintln!("tcpdump: {}", said.trim().replace('\n', "; "));
    (ports, captured_all(&said))
}

/// Whether tcpdump's closing summary says it wrote every packet its filter
/// received ("N packets captured", "N packets received by filter", "0
/// packets dropped by kernel"): on a loaded machine it can fall behind.
fn captured_all(said: &str) -> bool {
    let count = |what: &str| {
        said.lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
    };
    matches!(
        (count("packets captured"), count("received by filter"), count("dropped by kernel")),
        (Some(c), Some(r), Some(0)) if c == r
    )
}

/// Issue 18: a capture taken on a Linux host with checksum offload holds
/// only the pseudo-header sum in every TCP checksum field
/// (`CHECKSUM_PARTIAL`), and `klab lro` passed every packet of one up as
/// `bad_checksum`. This test makes such a capture with the real kernel
/// ([`host_capture`]: three IPv4 bulk streams and one IPv6) and runs
/// `klab lro` on it with default flags (and `--mode gro`): the partial
/// checksums are recognised and counted, segments merge, the merged
/// packets carry valid checksums, and every stream's bytes are unchanged
/// ([`check_capture`], with tshark when installed). Needs root, `ip`,
/// `nsenter`, `ethtool` and `tcpdump`; skips, saying why, without them.
#[test]
fn issue_18_a_capture_made_on_a_linux_host_aggregates_with_default_flags() {
    const TEST: &str = "issue_18_a_capture_made_on_a_linux_host";
    if !privileged() {
        eprintln!(
            "{TEST}: skipped: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for network namespaces"
        );
        return;
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("nsenter", "--version"),
        ("ethtool", "--version"),
        ("tcpdump", "--version"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            eprintln!(
                "{TEST}: skipped: `{tool}` is not installed (.ci/setup.d/lro.sh installs it)"
            );
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("host-veth.pcap");
    let sizes = [1 << 20, 1 << 20, 1 << 20, 1 << 18];
    // A capture tcpdump fell behind on (a loaded machine) is taken again,
    // at most three times.
    let mut attempt = 0;
    let ports = loop {
        attempt += 1;
        let (ports, complete) = host_capture(&pcap, &sizes);
        if complete {
            break ports;
        }
        assert!(
            attempt < 3,
            "{TEST}: tcpdump dropped packets in 3 captures: the machine is too loaded to take one"
        );
        eprintln!("{TEST}: tcpdump dropped packets; capturing again");
    };

    // The capture holds every byte sent, in as many segments as the MSS
    // makes: one packet per segment.
    let bytes = std::fs::read(&pcap).unwrap();
    let cap = Capture::parse(&bytes).unwrap();
    let link = cap.link().unwrap();
    let tcp_segments = cap
        .packets
        .iter()
        .filter(|p| wire::parse(link, p.data).is_ok())
        .count() as u64;
    let streams = Streams::of(link, cap.packets.iter().map(|p| p.data));
    for (port, size) in ports.iter().zip(sizes) {
        let (k, flow) = streams
            .flows
            .iter()
            .find(|(k, _)| k.name.contains(&format!(":{port} > ")))
            .unwrap_or_else(|| panic!("no flow from port {port} in the capture"));
        assert!(
            flow.bytes.len() >= size,
            "{}: {} bytes",
            k.name,
            flow.bytes.len()
        );
        assert!(
            flow.starts.len() >= size / 1500,
            "{}: TSO was not off",
            k.name
        );
    }

    let have_tshark = tshark();
    let outs = check_capture(&pcap, dir.path(), have_tshark);
    for (mode, out) in ["lro", "gro"].iter().zip(&outs) {
        let st = |name| stat(out, name).unwrap_or_else(|| panic!("{mode}: no {name} in\n{out}"));
        assert_eq!(stat(out, "passed: bad_checksum"), None, "{mode}:\n{out}");
        // Every TCP segment's checksum was judged and passed: nearly all
        // partial (a socket-less reply, e.g. from TIME_WAIT, gets a full
        // one from ip_send_unicast_reply()).
        let (partial, verified) = (st("csum_partial"), st("csum_verified"));
        eprintln!(
            "{TEST}: {mode}: {} packets in, {} out, {} merged; checksums {partial} partial, {verified} full",
            st("packets in"),
            st("packets out"),
            st("merged packets (segs > 1)")
        );
        assert_eq!(partial + verified, tcp_segments, "{mode}:\n{out}");
        assert!(partial * 10 >= tcp_segments * 9, "{mode}:\n{out}");
        // Merged: at most three packets in four went up.
        assert!(st("merged packets (segs > 1)") > 0, "{mode}:\n{out}");
        assert!(
            st("packets out") * 4 < st("packets in") * 3,
            "{mode}:\n{out}"
        );
    }
}

/// A capture whose checksums are mostly wrong (here zeroed, as some
/// capture setups leave them) is mostly passed up unmerged by default, and
/// `klab lro` says so in one line naming `--trust-checksums`; with that
/// flag it merges.
#[test]
fn mostly_wrong_checksums_are_reported_with_the_flag_that_trusts_them() {
    use klab_lro::capture::CaptureWriter;
    use klab_lro::workload::{BulkSpec, bulk};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeroed.pcap");
    let mut w = CaptureWriter::new(Vec::new(), klab_lro::CaptureFormat::Pcap, 1).unwrap();
    let frames = bulk(&BulkSpec {
        flows: 2,
        segs_per_flow: 40,
        ..BulkSpec::default()
    });
    for (i, f) in frames.iter().enumerate() {
        let mut d = f.data.clone();
        let seg = wire::parse(klab_lro::LinkType::Ethernet, &d).unwrap();
        let o = usize::from(seg.tcp_off) + 16;
        // Every third frame keeps its valid checksum: 27 of 80 pass.
        if i % 3 != 0 {
            d[o] = 0;
            d[o + 1] = 0;
        }
        w.write(i as u64 * 1000, d.len() as u32, &d).unwrap();
    }
    std::fs::write(&path, w.into_inner()).unwrap();
    let p = path.to_str().unwrap();
    let o = klab(&["lro", p]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stat(&out, "passed: bad_checksum"), Some(53), "{out}");
    assert_eq!(stat(&out, "csum_verified"), Some(27), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{p}: 53 of 80 TCP segments have wrong checksums"))
            && err.contains("--trust-checksums"),
        "{err}"
    );
    let o = klab(&["lro", p, "--trust-checksums"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stat(&out, "passed: bad_checksum"), None, "{out}");
    assert!(stat(&out, "packets out").unwrap() < 20, "{out}");
    assert!(o.stderr.is_empty());
}
