//! `klab tcp-repair` end to end: a shell holds a TCP connection (bash's
//! /dev/tcp), klab takes it from the shell, and `cat` carries it on, the
//! peer (this test) none the wiser. Live cases need root, `ip` and `nft`;
//! without them they print why and pass.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use klab_tcp_repair::netns::{Netns, privileged, unique_name};
use klab_tcp_repair::{ConnImage, Image, TcpOptions, TcpState, netlock};

fn klab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klab"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn can_run(test: &str) -> bool {
    if !privileged() {
        eprintln!("{test}: skipped: needs root");
        return false;
    }
    for t in ["ip", "nft", "bash"] {
        if Command::new("which")
            .arg(t)
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("{test}: skipped: `{t}` is not installed");
            return false;
        }
    }
    true
}

fn sample() -> ConnImage {
    ConnImage {
        local: "127.0.0.1:7000".parse().unwrap(),
        remote: "127.0.0.1:40000".parse().unwrap(),
        state: TcpState::Established,
        options: TcpOptions {
            timestamps: true,
            sack: true,
            wscale: Some((7, 7)),
        },
        mss_clamp: 65483,
        timestamp: 42,
        window: None,
        recv_seq: 1000,
        send_seq: 2000,
        recv_queue: b"hello".to_vec(),
        send_queue: b"abc".to_vec(),
        unsent: 1,
    }
}

#[test]
fn show_prints_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    std::fs::write(
        &p,
        Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap(),
    )
    .unwrap();
    let out = run(klab().args(["tcp-repair", "show"]).arg(&p));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("connection 0: 127.0.0.1:7000 -> 127.0.0.1:40000"),
        "{s}"
    );
    assert!(s.contains("state       ESTABLISHED"), "{s}");
    assert!(
        s.contains("options     sack, timestamps, wscale snd 7 rcv 7"),
        "{s}"
    );
    assert!(
        s.contains("recv queue  5 bytes, rcv_nxt 1000: 68 65 6c 6c 6f"),
        "{s}"
    );
    assert!(
        s.contains("send queue  3 bytes (2 sent, 1 unsent), write_seq 2000"),
        "{s}"
    );
}

#[test]
fn corrupt_and_truncated_images_are_rejected_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let good = Image {
        conns: vec![sample()],
    }
    .to_bytes()
    .unwrap();
    let p = dir.path().join("cut");
    std::fs::write(&p, &good[..20]).unwrap();
    let out = run(klab().args(["tcp-repair", "show"]).arg(&p));
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    // Read as a stream, the cut is found where the connection record
    // should start, not as a checksum over the wrong bytes.
    assert!(
        e.contains(&p.display().to_string())
            && e.contains("byte 14: connection: truncated, 90 bytes needed"),
        "{e}"
    );
    let mut bad = good.clone();
    bad[40] ^= 0x10;
    std::fs::write(&p, &bad).unwrap();
    let out = run(klab().args(["tcp-repair", "show"]).arg(&p));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("corrupt or truncated"),
        "{}",
        text(&out.stderr)
    );
    // A restore of it fails the same way, before any socket exists.
    if privileged() {
        let out = run(klab()
            .args(["tcp-repair", "restore"])
            .arg(&p)
            .args(["--", "true"]));
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("byte 112: crc"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn without_cap_net_admin_the_message_says_so() {
    if !privileged() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("without_cap_net_admin: skipped: needs root and setpriv to drop the capability");
        return;
    }
    let out = run(Command::new("setpriv")
        .args(["--bounding-set=-net_admin", "--inh-caps=-net_admin"])
        .arg(env!("CARGO_BIN_EXE_klab"))
        .args([
            "tcp-repair",
            "dump",
            "--pid",
            "1",
            "--fd",
            "0",
            "-o",
            "/nonexistent/x",
        ]));
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.starts_with("klab: tcp-repair needs CAP_NET_ADMIN (run as root)"),
        "{e}"
    );
}

/// A shell in `ns` connected to a listener of ours: (shell, our end).
fn shell_connection(ns: &Netns, script_after: &str) -> (Child, TcpStream) {
    let l = ns
        .run(|| TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let port = l.local_addr().unwrap().port();
    let child = Command::new("ip")
        .args(["netns", "exec", ns.name().unwrap(), "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}; {script_after}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (peer, _) = l.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (child, peer)
}

/// Waits until `pid`'s descriptor 3 is a socket (bash has opened it and
/// exec'd into `sleep`).
fn wait_fd3(pid: u32) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let link = std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap_or_default();
        if comm.trim() == "sleep" && link.to_string_lossy().starts_with("socket:") {
            return;
        }
        assert!(Instant::now() < end, "shell never held fd 3");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_exactly(peer: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    peer.read_exact(&mut b).unwrap();
    b
}

fn no_locks(ns: &Netns) -> bool {
    netlock::list(Some(ns.path())).unwrap().is_empty()
}

/// dump / show / restore: the shell's unread "hello" moves with the
/// connection, bytes the peer sends while the connection is dumped are
/// dropped by the lock (not reset) and arrive after the restore, and `cat`
/// on descriptor 3 carries on. The restored program sees LISTEN_FDS=1 and
/// LISTEN_PID = its own pid.
#[test]
fn dump_then_restore_hands_the_connection_to_another_program() {
    if !can_run("dump_then_restore") {
        return;
    }
    let ns = Netns::create(&unique_name("cli")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("conn.img");
    let (mut shell, mut peer) = shell_connection(&ns, "exec sleep 30");
    wait_fd3(shell.id());
    peer.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let out = run(klab()
        .args([
            "tcp-repair",
            "dump",
            "--pid",
            &shell.id().to_string(),
            "--fd",
            "3",
            "-o",
        ])
        .arg(&img));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("5 bytes queued"),
        "{}",
        text(&out.stdout)
    );
    assert!(!no_locks(&ns), "the dump keeps the connection locked");
    // The shell dies; its socket, in repair mode, goes without a word.
    shell.kill().unwrap();
    shell.wait().unwrap();
    peer.write_all(b"-world").unwrap();

    let out = run(klab().args(["tcp-repair", "show"]).arg(&img));
    assert!(
        text(&out.stdout).contains("recv queue  5 bytes"),
        "{}",
        text(&out.stdout)
    );

    let mut restored = klab()
        .args(["tcp-repair", "restore"])
        .arg(&img)
        .args(["--netns", ns.name().unwrap(), "--", "bash", "-c"])
        .arg(r#"printf '%s %s %s\n' "$LISTEN_FDS" "$LISTEN_PID" "$$" >&3; exec cat <&3 >&3"#)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while b[0] != b'\n' {
        peer.read_exact(&mut b).unwrap();
        line.push(b[0]);
    }
    let line = text(&line);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!(f[0], "1", "LISTEN_FDS");
    assert_eq!(f[1], f[2], "LISTEN_PID is the program's pid");
    assert_eq!(
        f[1],
        restored.id().to_string(),
        "klab exec'd the program in place"
    );
    assert_eq!(read_exactly(&mut peer, 11), b"hello-world");
    peer.write_all(b"!").unwrap();
    assert_eq!(read_exactly(&mut peer, 1), b"!");
    peer.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest)
        .expect("a clean end of stream, no reset");
    assert!(rest.is_empty());
    assert!(restored.wait().unwrap().success());
    assert!(no_locks(&ns), "the restore removed the lock");
}

/// migrate: one command takes the connection from the running shell, stops
/// the shell, and hands the connection to `cat`.
#[test]
fn migrate_moves_a_running_programs_connection() {
    if !can_run("migrate") {
        return;
    }
    let ns = Netns::create(&unique_name("mig")).unwrap();
    let (shell, mut peer) = shell_connection(&ns, "exec sleep 30");
    let pid = shell.id();
    wait_fd3(pid);
    peer.write_all(b"before").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut m = klab()
        .args([
            "tcp-repair",
            "migrate",
            "--pid",
            &pid.to_string(),
            "--fd",
            "3",
        ])
        .args([
            "--netns",
            ns.name().unwrap(),
            "--",
            "bash",
            "-c",
            "exec cat <&3 >&3",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(read_exactly(&mut peer, 6), b"before");
    peer.write_all(b"after").unwrap();
    assert_eq!(read_exactly(&mut peer, 5), b"after");
    peer.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest)
        .expect("a clean end of stream, no reset");
    assert!(m.wait().unwrap().success());
    let mut shell = shell;
    assert!(shell.wait().is_ok(), "the shell was stopped");
    assert!(no_locks(&ns), "the lock is gone");
}

/// A restore that fails (the owner, kept running, still holds the 4-tuple
/// in the same namespace) reports why, exits 2, and leaves no lock behind.
#[test]
fn failed_migrate_still_unlocks() {
    if !can_run("failed_migrate") {
        return;
    }
    let ns = Netns::create(&unique_name("fmig")).unwrap();
    let (mut shell, _peer) = shell_connection(&ns, "exec sleep 30");
    wait_fd3(shell.id());
    let out = run(klab()
        .args([
            "tcp-repair",
            "migrate",
            "--pid",
            &shell.id().to_string(),
            "--fd",
            "3",
        ])
        .args(["--keep-owner", "--netns", ns.name().unwrap(), "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("4-tuple is still owned"), "{e}");
    assert!(no_locks(&ns), "the failed restore released the lock");
    let out = run(klab()
        .args([
            "tcp-repair",
            "migrate",
            "--pid",
            &shell.id().to_string(),
            "--fd",
            "3",
        ])
        .args(["--netns", ns.name().unwrap(), "--", "/nonexistent/cmd"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("command not found"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        shell.try_wait().unwrap().is_none(),
        "nothing was done: the owner still runs"
    );
    shell.kill().unwrap();
    shell.wait().unwrap();
}

/// Without the capabilities the experiment still reports, saying why, and
/// `klab run` succeeds.
#[test]
fn the_experiment_reports_a_missing_capability() {
    if Command::new("setpriv").arg("--version").output().is_err() || !privileged() {
        eprintln!("experiment_without_caps: skipped: needs root and setpriv to drop capabilities");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new("setpriv")
        .args([
            "--bounding-set=-net_admin,-sys_admin",
            "--inh-caps=-net_admin,-sys_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_klab"))
        .args(["run", "tcp-repair", "--quick", "--out"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("skipped: no CAP_NET_ADMIN and CAP_SYS_ADMIN"),
        "{s}"
    );
}

/// `unlock` clears a lock left behind by a dump whose restore never came.
#[test]
fn unlock_clears_a_stale_lock() {
    if !can_run("unlock") {
        return;
    }
    let ns = Netns::create(&unique_name("unl")).unwrap();
    let t = (
        "127.0.0.1:5".parse().unwrap(),
        "127.0.0.1:6".parse().unwrap(),
    );
    let kept = klab_tcp_repair::NetLock::lock(Some(ns.path()), &[t])
        .unwrap()
        .keep(&[t])
        .unwrap();
    let out = run(klab().args(["tcp-repair", "unlock", "--netns", ns.name().unwrap()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("removed nft table inet {kept}\n")
    );
    assert!(no_locks(&ns));
    let out = run(klab().args(["tcp-repair", "unlock", "--netns", ns.name().unwrap()]));
    assert_eq!(text(&out.stdout), "no klab network lock here\n");
}
