//! Live tests: real sockets in network namespaces each test creates (and
//! deletes, even on failure). They need root (CAP_NET_ADMIN, namespaces)
//! and the `ip`, `nft` and `tcpdump` tools; without them they print why
//! and pass.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use klab_sys::tcp::{self as sys, RepairMode, RepairOpt, RepairQueue};
use klab_tcp_repair::netns::{Netns, privileged, unique_name};
use klab_tcp_repair::testbed::{
    self, Capture, Host, PeerConfig, PeerControl, ServerControl, Testbed,
};
use klab_tcp_repair::{
    Image, NetLock, RestoreError, RestoreOptions, TcpState, close_silently, dump, netlock, restore,
};

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok()
}

/// Whether the live tests can run here; prints why not.
fn can_run(test: &str) -> bool {
    if !privileged() {
        eprintln!("{test}: skipped: needs root (CAP_NET_ADMIN and network namespaces)");
        return false;
    }
    for t in ["ip", "nft", "tcpdump"] {
        if !have(t) {
            eprintln!(
                "{test}: skipped: `{t}` is not installed (.ci/setup.d/tcp-repair.sh installs it)"
            );
            return false;
        }
    }
    true
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A connected pair on loopback inside `ns`: (client, server).
fn pair(ns: &Netns) -> (TcpStream, TcpStream) {
    ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    })
    .unwrap()
}

fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Polls `cond` every millisecond for at most 5 s.
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The story of the page, on one host: a connection with bytes in both
/// queues and an unsent tail is dumped, its socket closed in repair mode,
/// the peer keeps writing into the gap (the lock drops those segments
/// instead of resetting), and a new socket restored from the image carries
/// on. Every byte arrives once, in order, and the peer sees no RST.
#[test]
fn dump_close_restore_keeps_every_byte_and_sends_no_reset() {
    if !can_run("dump_close_restore") {
        return;
    }
    let ns = Netns::create(&unique_name("rt")).unwrap();
    let cap = Capture::start(&ns).unwrap();
    let (mut client, server) = pair(&ns);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Client -> server bytes the server has not read: the receive queue.
    let c2s_1 = pattern(1, 3000);
    client.write_all(&c2s_1).unwrap();
    // Server -> client bytes beyond what the client's buffers take: the
    // tail stays unsent (window-limited).
    let s2c = pattern(2, 8 << 20);
    server.set_nonblocking(true).unwrap();
    let mut written = 0;
    let mut s = &server;
    while written < s2c.len() {
        match s.write(&s2c[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    wait_until("receive queue filled", || {
        sys::inq(server.as_fd()).unwrap() == 3000
    });
    wait_until("unsent tail", || {
        sys::outq_not_sent(server.as_fd()).unwrap() > 0
    });

    let local = server.local_addr().unwrap();
    let remote = server.peer_addr().unwrap();
    let lock = NetLock::lock(Some(ns.path()), &[(local, remote)]).unwrap();
    let img = dump(server.as_fd()).unwrap();
    img.assert_invariants();
    assert_eq!(img.state, TcpState::Established);
    assert_eq!(img.recv_queue, c2s_1);
    assert_eq!(img.send_queue, s2c[written - img.send_queue.len()..written]);
    assert!(img.unsent > 0, "an unsent tail was dumped");
    assert!(img.options.timestamps && img.options.sack && img.options.wscale.is_some());
    let bytes = Image {
        conns: vec![img.clone()],
    }
    .to_bytes()
    .unwrap();
    close_silently(OwnedFd::from(server)).unwrap();

    // The peer writes while no socket owns the 4-tuple.
    let c2s_2 = pattern(3, 2000);
    client.write_all(&c2s_2).unwrap();
    std::thread::sleep(Duration::from_millis(30));

    let img = Image::parse(&bytes).unwrap().conns.remove(0);
    let restored = ns
        .run(|| restore(&img, RestoreOptions::default()))
        .unwrap()
        .unwrap();
    // Dumping the restored socket gives back the image: same sequence
    // numbers, same queues (the rule "seq = dumped - queue length").
    let again = dump(restored.as_fd()).unwrap();
    again.assert_invariants();
    assert_eq!(again.recv_seq, img.recv_seq);
    assert_eq!(again.send_seq, img.send_seq);
    assert_eq!(again.recv_queue, img.recv_queue);
    assert_eq!(again.send_queue, img.send_queue);
    assert_eq!((again.local, again.remote), (img.local, img.remote));
    assert_eq!(again.mss_clamp, img.mss_clamp);
    assert_eq!(again.options, img.options);
    // The timestamp clock continues from the dumped value (TCP_TIMESTAMP
    // sets tsoffset), so the peer's PAWS check keeps passing: without it
    // the new socket's clock would start from its own random offset.
    let ts_step = again.timestamp.wrapping_sub(img.timestamp);
    assert!(ts_step < 5_000, "timestamp clock jumped by {ts_step}");
    let fd = restored.finish().unwrap();
    lock.unlock().unwrap();

    let mut server = TcpStream::from(fd);
    server.set_nonblocking(false).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server writes the rest of its stream on the new socket.
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; s2c.len()];
        client.read_exact(&mut got).map(|()| (got == s2c, client))
    });
    server.write_all(&pattern(2, 8 << 20)[written..]).unwrap();
    let mut got = vec![0u8; c2s_1.len() + c2s_2.len()];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, [c2s_1, c2s_2].concat(), "client bytes once, in order");
    let (same, _client) = reader.join().unwrap().unwrap();
    assert!(same, "server bytes once, in order");
    let (flags, lines) = cap.stop().unwrap();
    assert_eq!(flags.rst, 0, "the peer saw a reset: {lines:?}");
    assert_eq!(flags.syn, 2, "one handshake only (SYN, SYN-ACK): {lines:?}");
    assert_eq!(flags.handshakes, 1);
}

/// Half-closed: our FIN sent but not acked (FIN_WAIT1, the lock dropped
/// it). The restore puts the FIN back (libsoccr's
/// restore_fin_in_snd_queue): the peer reads the data, then end of stream,
/// and can still send to the half-closed side.
#[test]
fn fin_wait1_is_restored_with_its_fin() {
    if !can_run("fin_wait1") {
        return;
    }
    let ns = Netns::create(&unique_name("fin")).unwrap();
    let (mut client, mut server) = pair(&ns);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    server.write_all(b"last words").unwrap();
    server.shutdown(std::net::Shutdown::Write).unwrap();
    let img = dump(server.as_fd()).unwrap();
    assert_eq!(img.state, TcpState::FinWait1);
    assert_eq!(img.send_queue, b"last words", "the FIN is not data");
    close_silently(OwnedFd::from(server)).unwrap();
    let restored = ns
        .run(|| restore(&img, RestoreOptions::default()))
        .unwrap()
        .unwrap();
    let again = dump(restored.as_fd()).unwrap();
    assert_eq!(again.state, TcpState::FinWait1);
    assert_eq!(
        again.send_seq, img.send_seq,
        "write_seq counts the FIN again"
    );
    let fd = restored.finish().unwrap();
    lock.unlock().unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    client.write_all(b"reply").unwrap();
    let mut server = TcpStream::from(fd);
    server.set_nonblocking(false).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 5];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"reply");
}

/// Moves a half-closed server socket: lock, dump (the state must be
/// `want`), close silently, restore, re-dump (same state, same sequence
/// numbers), leave repair mode, unlock.
fn move_half_closed(ns: &Netns, server: TcpStream, lock: NetLock, want: TcpState) -> TcpStream {
    let img = dump(server.as_fd()).unwrap();
    assert_eq!(img.state, want);
    close_silently(OwnedFd::from(server)).unwrap();
    let restored = ns
        .run(|| restore(&img, RestoreOptions::default()))
        .unwrap()
        .unwrap();
    let again = dump(restored.as_fd()).unwrap();
    assert_eq!(again.state, want, "the forged segments rebuilt the state");
    assert_eq!(
        (again.recv_seq, again.send_seq),
        (img.recv_seq, img.send_seq)
    );
    assert_eq!(again.recv_queue, img.recv_queue);
    let fd = restored.finish().unwrap();
    lock.unlock().unwrap();
    let s = TcpStream::from(fd);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[track_caller]
fn wait_state(s: &TcpStream, state: u8) {
    wait_until("tcp state", || {
        sys::tcp_info_head(s.as_fd()).unwrap().state == state
    });
}

/// CLOSE_WAIT: the peer's FIN is forged back into the receive queue (a
/// raw segment marked so the lock lets it pass): the moved server reads
/// the peer's last bytes, then end of stream, and can still answer.
#[test]
fn close_wait_gets_the_peers_fin_back() {
    if !can_run("close_wait") {
        return;
    }
    let ns = Netns::create(&unique_name("cw")).unwrap();
    let (mut client, server) = pair(&ns);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"request").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_state(&server, 8);
    let t = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    let mut server = move_half_closed(&ns, server, lock, TcpState::CloseWait);
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"request", "the data, then the peer's FIN");
    server.write_all(b"response").unwrap();
    drop(server);
    let mut resp = Vec::new();
    client.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"response");
}

/// FIN_WAIT2: our FIN goes back as sent and an ACK of it is forged; the
/// peer, which had read nothing yet, reads our bytes and our FIN, and its
/// late bytes still reach the moved socket.
#[test]
fn fin_wait2_keeps_its_acked_fin() {
    if !can_run("fin_wait2") {
        return;
    }
    let ns = Netns::create(&unique_name("fw2")).unwrap();
    let (mut client, mut server) = pair(&ns);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    server.write_all(b"goodbye").unwrap();
    server.shutdown(std::net::Shutdown::Write).unwrap();
    wait_state(&server, 5);
    let t = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    let mut server = move_half_closed(&ns, server, lock, TcpState::FinWait2);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"goodbye");
    client.write_all(b"late").unwrap();
    let mut b = [0u8; 4];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"late");
}

/// LAST_ACK: both FINs, ours not yet acked. The peer's FIN is forged back,
/// then ours is queued again and reaches the peer after the move.
#[test]
fn last_ack_finishes_the_close() {
    if !can_run("last_ack") {
        return;
    }
    let ns = Netns::create(&unique_name("la")).unwrap();
    let (mut client, server) = pair(&ns);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_state(&server, 8);
    let t = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    // Under the lock our FIN is dropped: LAST_ACK.
    server.shutdown(std::net::Shutdown::Write).unwrap();
    wait_state(&server, 9);
    let _server = move_half_closed(&ns, server, lock, TcpState::LastAck);
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("our FIN arrives, no reset");
    assert!(got.is_empty());
}

/// The kernel's rules for the repair options, pinned with their errnos
/// (net/ipv4/tcp.c, do_tcp_setsockopt, tcp_repair_options_est,
/// tcp_repair_set_window).
#[test]
fn repair_options_fail_with_the_kernels_errnos() {
    if !can_run("repair_options_errnos") {
        return;
    }
    let ns = Netns::create(&unique_name("opt")).unwrap();
    let (_c, s) = pair(&ns);
    let fd = s.as_fd();
    // TCP_REPAIR_QUEUE outside repair mode: EPERM.
    assert_eq!(
        errno(&sys::set_repair_queue(fd, RepairQueue::Recv).unwrap_err()),
        libc_eperm()
    );
    // TCP_REPAIR_OPTIONS outside repair mode: EINVAL (not EPERM).
    let mss = [RepairOpt {
        opt_code: sys::TCPOPT_MSS,
        opt_val: 1400,
    }];
    assert_eq!(errno(&sys::set_repair_options(fd, &mss).unwrap_err()), 22);
    sys::set_repair(fd, RepairMode::On).unwrap();
    // TCP_QUEUE_SEQ once established: EPERM.
    sys::set_repair_queue(fd, RepairQueue::Send).unwrap();
    assert_eq!(errno(&sys::set_queue_seq(fd, 1).unwrap_err()), libc_eperm());
    // A window scale above 14: EFBIG.
    let ws = [RepairOpt {
        opt_code: sys::TCPOPT_WINDOW,
        opt_val: 15 | (7 << 16),
    }];
    assert_eq!(errno(&sys::set_repair_options(fd, &ws).unwrap_err()), 27);
    // SACK_PERM with a nonzero value: EINVAL.
    let sack = [RepairOpt {
        opt_code: sys::TCPOPT_SACK_PERM,
        opt_val: 1,
    }];
    assert_eq!(errno(&sys::set_repair_options(fd, &sack).unwrap_err()), 22);
    // A window whose max_window < snd_wnd: EINVAL.
    let mut w = sys::repair_window(fd).unwrap();
    w.max_window = w.snd_wnd.wrapping_sub(1);
    assert_eq!(errno(&sys::set_repair_window(fd, &w).unwrap_err()), 22);
    // rcv_wup after rcv_nxt: EINVAL.
    sys::set_repair_queue(fd, RepairQueue::Recv).unwrap();
    let rcv_nxt = sys::queue_seq(fd).unwrap();
    let mut w = sys::repair_window(fd).unwrap();
    w.rcv_wup = rcv_nxt.wrapping_add(1);
    assert_eq!(errno(&sys::set_repair_window(fd, &w).unwrap_err()), 22);
    // The window as read is accepted back.
    let w = sys::repair_window(fd).unwrap();
    sys::set_repair_window(fd, &w).unwrap();
    sys::set_repair(fd, RepairMode::OffNoWindowProbe).unwrap();
    // A listening socket cannot enter repair mode: EPERM.
    let l = ns
        .run(|| TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    assert_eq!(
        errno(&sys::set_repair(l.as_fd(), RepairMode::On).unwrap_err()),
        libc_eperm()
    );
}

fn libc_eperm() -> i32 {
    1
}

fn tcp_sockets_on_port(ns: &Netns, port: u16) -> usize {
    ns.run(|| {
        let t = std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap();
        let hex = format!(":{port:04X} ");
        t.lines()
            .skip(1)
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| format!("{a} ").contains(&hex))
            })
            .count()
    })
    .unwrap()
}

/// Restoring while the original still owns the 4-tuple fails with a clear
/// reason, and the half-built socket does not survive.
#[test]
fn failed_restore_leaves_no_socket_behind() {
    if !can_run("failed_restore") {
        return;
    }
    let ns = Netns::create(&unique_name("fail")).unwrap();
    let (_c, s) = pair(&ns);
    let port = s.local_addr().unwrap().port();
    let img = dump(s.as_fd()).unwrap();
    let before = tcp_sockets_on_port(&ns, port);
    let err = ns
        .run(|| restore(&img, RestoreOptions::default()))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RestoreError::TupleInUse { .. }), "{err}");
    assert!(err.to_string().contains("4-tuple is still owned"), "{err}");
    assert_eq!(
        tcp_sockets_on_port(&ns, port),
        before,
        "no socket left behind"
    );
    // An unsupported state is refused before any socket is made.
    let mut cw = img.clone();
    cw.state = TcpState::Close;
    let err = ns
        .run(|| restore(&cw, RestoreOptions::default()))
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("state CLOSE:"), "{err}");
    assert_eq!(tcp_sockets_on_port(&ns, port), before);
}

/// A lock kept past its guard is found and cleared as stale; a live lock
/// drops the connection's packets.
#[test]
fn kept_locks_are_cleared_as_stale() {
    if !can_run("kept_locks") {
        return;
    }
    let ns = Netns::create(&unique_name("lock")).unwrap();
    let t: (SocketAddr, SocketAddr) = (
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    let name = lock.table().to_owned();
    assert_eq!(
        netlock::list(Some(ns.path())).unwrap(),
        vec![(name.clone(), Some(std::process::id() as i32))]
    );
    let kept = lock.keep(&[t]).unwrap();
    assert!(kept.starts_with("klab_tcp_repair_keep_"));
    assert_eq!(
        netlock::list(Some(ns.path())).unwrap(),
        vec![(kept.clone(), None)]
    );
    let live = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    let (deleted, left) = netlock::clear_stale(Some(ns.path()), false).unwrap();
    assert_eq!(deleted, vec![kept]);
    assert_eq!(
        left,
        vec![live.table().to_owned()],
        "a live process's lock stays"
    );
    drop(live);
    assert!(
        netlock::list(Some(ns.path())).unwrap().is_empty(),
        "drop unlocks"
    );
    assert_eq!(netlock::release_all(), 0);
}

/// The experiment's scenario: a peer streams to a server and checks the
/// echo; the server's connections move A -> B -> A -> B mid-stream (the
/// address moves with them); no byte is lost or repeated, and the peer's
/// capture shows no reset and no second handshake.
#[test]
fn connections_move_between_hosts_and_the_peer_never_notices() {
    if !can_run("move_between_hosts") {
        return;
    }
    let bed = Testbed::create().unwrap();
    let cap = Capture::start(&bed.peer).unwrap();
    let n = 8;
    let pc = Arc::new(PeerControl::default());
    let listening = AtomicBool::new(false);
    let (conns, (peer, _ready)) = std::thread::scope(|s| {
        let acc =
            s.spawn(|| testbed::accept_on(&bed, Host::A, n, Duration::from_secs(10), &listening));
        wait_until("listener", || listening.load(Ordering::Acquire));
        let p = testbed::spawn_peer(
            &bed,
            PeerConfig {
                conns: n,
                rate_bytes_per_sec: 4 << 20,
                max_bytes: 64 << 20,
                deadline: Duration::from_secs(30),
            },
            Arc::clone(&pc),
        );
        (acc.join().unwrap().unwrap(), p)
    });
    let mut conns = conns;
    let mut host = Host::A;
    let mut moved = 0;
    for round in 0..3 {
        let ctl = ServerControl::default();
        conns = std::thread::scope(|s| {
            let h = s.spawn(|| testbed::serve(conns, &ctl));
            // Let data flow, and let the receive queues fill on the last
            // round (the server stops reading).
            std::thread::sleep(Duration::from_millis(60));
            if round == 2 {
                ctl.pause_reading.store(true, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(30));
            }
            ctl.stop.store(true, Ordering::Release);
            h.join().unwrap()
        });
        let (c, m) = testbed::migrate(&bed, host, conns).unwrap();
        conns = c;
        moved += m.conns;
        host = host.other();
    }
    assert_eq!(moved, 3 * n);
    pc.finish.store(true, Ordering::Release);
    let ctl = ServerControl::default();
    let peer_res;
    (conns, peer_res) = std::thread::scope(|s| {
        let h = s.spawn(|| testbed::serve(conns, &ctl));
        let r = peer.join().unwrap().unwrap();
        ctl.stop.store(true, Ordering::Release);
        (h.join().unwrap(), r)
    });
    assert!(peer_res.errors.is_empty(), "{:?}", peer_res.errors);
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(
            c.received, peer_res.sent[i],
            "connection {i}: every byte arrived once"
        );
        assert_eq!(
            peer_res.echoed[i], peer_res.sent[i],
            "connection {i}: every reply came back"
        );
        assert!(peer_res.sent[i] > 0);
    }
    let (flags, lines) = cap.stop().unwrap();
    assert_eq!(flags.rst, 0, "the peer saw a reset: {lines:?}");
    assert_eq!(
        flags.handshakes, n,
        "one handshake per connection: {lines:?}"
    );
    assert!(flags.syn >= 2 * n);
}

/// The same move over IPv6 (`[::1]`): the image keeps 16-byte addresses,
/// the lock uses its ip6 set, the restore an AF_INET6 socket.
#[test]
fn ipv6_connections_move_too() {
    if !can_run("ipv6") {
        return;
    }
    let ns = Netns::create(&unique_name("v6")).unwrap();
    let (mut client, server) = ns
        .run(|| {
            let l = TcpListener::bind("[::1]:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            (c, s)
        })
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"over v6").unwrap();
    wait_until("receive queue", || sys::inq(server.as_fd()).unwrap() == 7);
    let t = (server.local_addr().unwrap(), server.peer_addr().unwrap());
    let lock = NetLock::lock(Some(ns.path()), &[t]).unwrap();
    let img = dump(server.as_fd()).unwrap();
    assert!(img.local.is_ipv6());
    close_silently(OwnedFd::from(server)).unwrap();
    client.write_all(b" and more").unwrap();
    let img = Image::parse(&Image { conns: vec![img] }.to_bytes().unwrap())
        .unwrap()
        .conns
        .remove(0);
    let fd = ns
        .run(|| restore(&img, RestoreOptions::default()))
        .unwrap()
        .unwrap()
        .finish()
        .unwrap();
    lock.unlock().unwrap();
    let mut server = TcpStream::from(fd);
    server.set_nonblocking(false).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 16];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"over v6 and more");
    server.write_all(b"ok").unwrap();
    let mut r = [0u8; 2];
    client.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"ok");
}
