//! A test network and a workload for moving live connections: a peer, two
//! server hosts, an echo stream, a migration, and a packet capture that
//! tells whether the peer noticed.
//!
//! ```text
//!            ns "p" (peer)                       127.77.1.1 on lo
//!        pa /            \ pb                    route 127.77.0.10/32 via pa or pb
//!     ap   /              \   bp
//!   ns "a" (host A)      ns "b" (host B)         127.77.0.10/32 on the active one
//!   127.77.2.1 on ap     127.77.3.1 on bp        (the links' own addresses)
//! ```
//!
//! Every address is in the loopback range (`route_localnet` lets it cross
//! the veth links), every name is unique to the run, and the namespaces go
//! away when the [`Testbed`] drops. Routes carry `rto_min 5ms` so a segment
//! dropped by the lock is retransmitted in milliseconds, not 200 ms.
//!
//! The workload: the peer opens `n` connections to the server and streams
//! a deterministic byte sequence on each ([`stream_byte`]); the server
//! echoes everything. The peer checks every echoed byte against the
//! sequence at its offset, so a byte lost, duplicated or reordered in
//! either direction is caught. [`migrate`] moves every server connection
//! from one host to the other mid-stream: lock on the source, dump, close
//! silently, restore on the target, switch the route (the address moves),
//! leave repair mode, unlock.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvFlags, SendFlags};

use crate::dump::{close_silently, dump};
use crate::image::Image;
use crate::netlock::NetLock;
use crate::netns::{Netns, NetnsError, unique_name};
use crate::restore::{RestoreOptions, restore};

/// The server's address, on whichever host holds the connection.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(127, 77, 0, 10);
/// The peer's address.
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(127, 77, 1, 1);
/// The server's port.
pub const SERVER_PORT: u16 = 7000;

/// Byte `off` of connection `conn`'s stream.
pub fn stream_byte(conn: u32, off: u64) -> u8 {
    let x = off
        .wrapping_add(u64::from(conn) << 40)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// Which server host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Host A.
    A,
    /// Host B.
    B,
}

impl Host {
    /// The other host.
    pub fn other(self) -> Host {
        match self {
            Host::A => Host::B,
            Host::B => Host::A,
        }
    }
}

/// The peer and the two hosts.
#[derive(Debug)]
pub struct Testbed {
    /// The peer's namespace.
    pub peer: Netns,
    /// Host A.
    pub a: Netns,
    /// Host B.
    pub b: Netns,
    /// A route socket in the peer's namespace, and the indexes of its links
    /// to A and B: the route switch is one netlink message.
    rtnl: std::sync::Mutex<(crate::rtnl::Rtnl, u32, u32)>,
}

fn tool_err(e: NetnsError) -> String {
    e.to_string()
}

impl Testbed {
    /// Builds the network; the server address starts on host A.
    ///
    /// # Errors
    /// Not root, or `ip` failing.
    pub fn create() -> Result<Testbed, NetnsError> {
        let peer = Netns::create(&unique_name("p"))?;
        let a = Netns::create(&unique_name("a"))?;
        let b = Netns::create(&unique_name("b"))?;
        let (pn, an, bn) = (
            peer.name().unwrap_or_default().to_owned(),
            a.name().unwrap_or_default().to_owned(),
            b.name().unwrap_or_default().to_owned(),
        );
        crate::netns::run_tool(
            "ip",
            &[
                "link", "add", "pa", "netns", &pn, "type", "veth", "peer", "name", "ap", "netns",
                &an,
            ],
        )?;
        crate::netns::run_tool(
            "ip",
            &[
                "link", "add", "pb", "netns", &pn, "type", "veth", "peer", "name", "bp", "netns",
                &bn,
            ],
        )?;
        let p = PEER_IP.to_string();
        let (s32, p32) = (format!("{SERVER_IP}/32"), format!("{p}/32"));
        peer.ip(&["link", "set", "pa", "up"])?;
        peer.ip(&["link", "set", "pb", "up"])?;
        a.ip(&["link", "set", "ap", "up"])?;
        b.ip(&["link", "set", "bp", "up"])?;
        peer.ip(&["addr", "add", &p32, "dev", "lo"])?;
        peer.ip(&[
            "route", "add", &s32, "dev", "pa", "src", &p, "rto_min", "5ms",
        ])?;
        // Each host link keeps an address of its own, so removing the
        // server address does not flush the link's routes.
        a.ip(&["addr", "add", "127.77.2.1/32", "dev", "ap"])?;
        b.ip(&["addr", "add", "127.77.3.1/32", "dev", "bp"])?;
        a.ip(&["addr", "add", &s32, "dev", "ap"])?;
        a.ip(&["route", "add", &p32, "dev", "ap", "rto_min", "5ms"])?;
        b.ip(&["route", "add", &p32, "dev", "bp", "rto_min", "5ms"])?;
        let rtnl = peer
            .run(|| -> std::io::Result<_> {
                let r = crate::rtnl::Rtnl::open()?;
                let (ia, ib) = (r.index("pa")?, r.index("pb")?);
                Ok((r, ia, ib))
            })?
            .map_err(|e| NetnsError::Tool {
                command: "rtnetlink in the peer namespace".into(),
                message: e.to_string(),
            })?;
        Ok(Testbed {
            peer,
            a,
            b,
            rtnl: std::sync::Mutex::new(rtnl),
        })
    }

    /// A host's namespace.
    pub fn host(&self, h: Host) -> &Netns {
        match h {
            Host::A => &self.a,
            Host::B => &self.b,
        }
    }

    fn dev(h: Host) -> &'static str {
        match h {
            Host::A => "ap",
            Host::B => "bp",
        }
    }

    /// The server's socket address.
    pub fn server_addr() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT)
    }

    /// Points the peer's route to the server at host `h`.
    ///
    /// # Errors
    /// `ip` failing.
    pub fn route_to(&self, h: Host) -> Result<(), NetnsError> {
        let mut g = self
            .rtnl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (rtnl, ia, ib) = &mut *g;
        let oif = if h == Host::A { *ia } else { *ib };
        rtnl.route_replace(SERVER_IP, oif, PEER_IP, 5)
            .map_err(|e| NetnsError::Tool {
                command: format!("RTM_NEWROUTE {SERVER_IP}/32 oif {oif}"),
                message: e.to_string(),
            })
    }

    /// Adds (`true`) or removes the server address on host `h`.
    ///
    /// # Errors
    /// `ip` failing.
    pub fn address(&self, h: Host, present: bool) -> Result<(), NetnsError> {
        let s32 = format!("{SERVER_IP}/32");
        let op = if present { "add" } else { "del" };
        self.host(h)
            .ip(&["addr", op, &s32, "dev", Self::dev(h)])
            .map(|_| ())
    }
}

/// One server-side connection of the echo workload: the socket and the
/// application's state (bytes read but not yet echoed), which moves with
/// it as a process's memory would.
#[derive(Debug)]
pub struct EchoConn {
    /// The socket (nonblocking).
    pub fd: OwnedFd,
    /// Read, not yet written back.
    pub pending: Vec<u8>,
    /// Bytes read so far.
    pub received: u64,
    /// The peer closed its side.
    pub eof: bool,
}

/// Commands to a running echo server.
#[derive(Debug, Default)]
pub struct ServerControl {
    /// Stop and hand the connections back.
    pub stop: AtomicBool,
    /// Leave incoming data in the receive queues.
    pub pause_reading: AtomicBool,
    /// Publish the queued bytes (`SIOCINQ + SIOCOUTQ`, all connections) in
    /// `queued` on every round (a few ioctls per connection).
    pub measure_queues: AtomicBool,
    /// Bytes in the server sockets' queues, when measured.
    pub queued: AtomicU64,
}

fn set_nonblocking(fd: &OwnedFd) {
    let _ = rustix::io::ioctl_fionbio(fd, true);
}

/// Serves the echo workload until `control.stop`, then returns the
/// connections, pending bytes included. Polls every millisecond at most.
pub fn serve(mut conns: Vec<EchoConn>, control: &ServerControl) -> Vec<EchoConn> {
    let mut buf = vec![0u8; 64 << 10];
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    while !control.stop.load(Ordering::Acquire) {
        let paused = control.pause_reading.load(Ordering::Relaxed);
        if control.measure_queues.load(Ordering::Relaxed) {
            let q: u64 = conns
                .iter()
                .map(|c| {
                    let fd = c.fd.as_fd();
                    u64::from(klab_sys::tcp::inq(fd).unwrap_or(0))
                        + u64::from(klab_sys::tcp::outq(fd).unwrap_or(0))
                })
                .sum();
            control.queued.store(q, Ordering::Relaxed);
        }
        let mut fds: Vec<PollFd<'_>> = conns
            .iter()
            .map(|c| {
                let mut f = PollFlags::empty();
                if c.pending.is_empty() && !paused && !c.eof {
                    f |= PollFlags::IN;
                }
                if !c.pending.is_empty() {
                    f |= PollFlags::OUT;
                }
                PollFd::new(&c.fd, f)
            })
            .collect();
        if rustix::event::poll(&mut fds, Some(&timeout)).is_err() {
            continue;
        }
        let ready: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        for (c, r) in conns.iter_mut().zip(ready) {
            if r.is_empty() {
                continue;
            }
            if !c.pending.is_empty() {
                if let Ok(n) =
                    rustix::net::send(&c.fd, &c.pending, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
                {
                    c.pending.drain(..n);
                }
            } else if r.contains(PollFlags::IN) && !paused {
                match rustix::net::recv(&c.fd, &mut buf[..], RecvFlags::DONTWAIT) {
                    Ok((_, 0)) => c.eof = true,
                    Ok((_, n)) => {
                        c.received += n as u64;
                        c.pending.extend_from_slice(&buf[..n]);
                    }
                    Err(_) => {}
                }
            }
        }
    }
    conns
}

/// Commands to a running peer.
#[derive(Debug, Default)]
pub struct PeerControl {
    /// Stop sending new data; finish once every byte sent came back.
    pub finish: AtomicBool,
    /// Leave echoed data in the peer's receive queues.
    pub pause_reading: AtomicBool,
    /// Bytes echoed back so far, all connections.
    pub echoed: AtomicU64,
}

/// What the peer saw.
#[derive(Clone, Debug, Default)]
pub struct PeerResult {
    /// Bytes sent, per connection.
    pub sent: Vec<u64>,
    /// Bytes echoed back and verified, per connection.
    pub echoed: Vec<u64>,
    /// Errors: a wrong byte, a reset, an early end, a timeout.
    pub errors: Vec<String>,
    /// The longest time any connection went without echo progress while it
    /// had bytes outstanding: what the peer would call a stall.
    pub max_stall: Duration,
}

/// The peer's settings.
#[derive(Clone, Copy, Debug)]
pub struct PeerConfig {
    /// Connections to open.
    pub conns: usize,
    /// Sending rate per connection, bytes per second.
    pub rate_bytes_per_sec: u64,
    /// Most bytes one connection sends.
    pub max_bytes: u64,
    /// Give up after this long.
    pub deadline: Duration,
}

struct PeerConn {
    fd: OwnedFd,
    sent: u64,
    echoed: u64,
    last_progress: Instant,
    done: bool,
}

/// Runs the peer in the calling thread, which must be in the peer's
/// namespace: connects, streams, verifies, until `control.finish` and
/// everything is echoed, or the deadline. Signals `ready` once connected.
pub fn run_peer(cfg: PeerConfig, control: &PeerControl, ready: &AtomicBool) -> PeerResult {
    let start = Instant::now();
    let mut res = PeerResult::default();
    let mut conns = Vec::with_capacity(cfg.conns);
    for i in 0..cfg.conns {
        match std::net::TcpStream::connect_timeout(&Testbed::server_addr(), Duration::from_secs(5))
        {
            Ok(s) => {
                let fd = OwnedFd::from(s);
                set_nonblocking(&fd);
                conns.push(PeerConn {
                    fd,
                    sent: 0,
                    echoed: 0,
                    last_progress: Instant::now(),
                    done: false,
                });
            }
            Err(e) => {
                res.errors.push(format!("connection {i}: connect: {e}"));
                ready.store(true, Ordering::Release);
                return res;
            }
        }
    }
    ready.store(true, Ordering::Release);
    let mut out = vec![0u8; 16 << 10];
    let mut inb = vec![0u8; 64 << 10];
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    let t0 = Instant::now();
    loop {
        let finishing = control.finish.load(Ordering::Acquire);
        let paused = control.pause_reading.load(Ordering::Relaxed);
        let allowed = (t0.elapsed().as_secs_f64() * cfg.rate_bytes_per_sec as f64) as u64;
        let allowed = allowed.min(cfg.max_bytes);
        if conns.iter().all(|c| c.done) || start.elapsed() > cfg.deadline {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = conns
            .iter()
            .map(|c| {
                let mut f = PollFlags::empty();
                if !paused && !c.done {
                    f |= PollFlags::IN;
                }
                if !finishing && c.sent < allowed {
                    f |= PollFlags::OUT;
                }
                PollFd::new(&c.fd, f)
            })
            .collect();
        if rustix::event::poll(&mut fds, Some(&timeout)).is_err() {
            continue;
        }
        let ready_flags: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        for (i, (c, r)) in conns.iter_mut().zip(ready_flags).enumerate() {
            let id = i as u32;
            if r.contains(PollFlags::OUT) && !finishing && c.sent < allowed {
                let n = ((allowed - c.sent) as usize).min(out.len());
                for (k, b) in out[..n].iter_mut().enumerate() {
                    *b = stream_byte(id, c.sent + k as u64);
                }
                if let Ok(w) =
                    rustix::net::send(&c.fd, &out[..n], SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
                {
                    c.sent += w as u64;
                }
            }
            if r.intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP) && !paused {
                match rustix::net::recv(&c.fd, &mut inb[..], RecvFlags::DONTWAIT) {
                    Ok((_, 0)) => {
                        res.errors
                            .push(format!("connection {i}: end of stream at {}", c.echoed));
                        c.done = true;
                    }
                    Ok((_, n)) => {
                        if let Some(k) =
                            (0..n).find(|&k| inb[k] != stream_byte(id, c.echoed + k as u64))
                        {
                            res.errors.push(format!(
                                "connection {i}: echoed byte {} is {:#04x}, expected {:#04x}",
                                c.echoed + k as u64,
                                inb[k],
                                stream_byte(id, c.echoed + k as u64)
                            ));
                            c.done = true;
                        }
                        let now = Instant::now();
                        res.max_stall = res.max_stall.max(now - c.last_progress);
                        c.last_progress = now;
                        c.echoed += n as u64;
                        control.echoed.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if e == rustix::io::Errno::AGAIN => {}
                    Err(e) => {
                        res.errors.push(format!("connection {i}: recv: {e}"));
                        c.done = true;
                    }
                }
            }
            if c.echoed == c.sent && !paused {
                // Nothing outstanding: the clock of a stall restarts.
                c.last_progress = Instant::now();
            }
            if finishing && c.echoed == c.sent {
                c.done = true;
            }
        }
    }
    for (i, c) in conns.iter().enumerate() {
        if c.echoed != c.sent
            && !res
                .errors
                .iter()
                .any(|e| e.starts_with(&format!("connection {i}:")))
        {
            res.errors.push(format!(
                "connection {i}: {} bytes sent, {} echoed when the peer gave up",
                c.sent, c.echoed
            ));
        }
        res.sent.push(c.sent);
        res.echoed.push(c.echoed);
    }
    res
}

/// Starts the peer on its own thread inside the peer namespace.
pub fn spawn_peer(
    bed: &Testbed,
    cfg: PeerConfig,
    control: Arc<PeerControl>,
) -> (
    std::thread::JoinHandle<Result<PeerResult, String>>,
    Arc<AtomicBool>,
) {
    let ready = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ready);
    let path = bed.peer.path().to_owned();
    let h = std::thread::spawn(move || {
        Netns::at(&path)
            .enter_current_thread()
            .map_err(|e| e.to_string())?;
        Ok(run_peer(cfg, &control, &r))
    });
    (h, ready)
}

/// Listens on host `h` and accepts `n` connections (blocking, with a
/// deadline), returning them nonblocking. `listener_ready` is set once the
/// socket listens.
///
/// # Errors
/// A socket call failing, or the deadline passing.
pub fn accept_on(
    bed: &Testbed,
    h: Host,
    n: usize,
    deadline: Duration,
    listener_ready: &AtomicBool,
) -> Result<Vec<EchoConn>, String> {
    bed.host(h)
        .run(|| -> Result<Vec<EchoConn>, String> {
            let l = listen_with_retry(deadline)?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            listener_ready.store(true, Ordering::Release);
            let end = Instant::now() + deadline;
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                match l.accept() {
                    Ok((s, _)) => {
                        let fd = OwnedFd::from(s);
                        set_nonblocking(&fd);
                        v.push(EchoConn {
                            fd,
                            pending: Vec::new(),
                            received: 0,
                            eof: false,
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > end {
                            return Err(format!("accepted {} of {n} connections in time", v.len()));
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            }
            Ok(v)
        })
        .map_err(tool_err)?
}

/// Binds and listens on the server's address. A port the previous round's
/// sockets still hold while they close (the kernel checks the port again
/// at `listen()`: net/ipv4/inet_connection_sock.c `inet_csk_listen_start()`)
/// is tried again every 10 ms until `deadline` has passed.
fn listen_with_retry(deadline: Duration) -> Result<std::net::TcpListener, String> {
    let end = Instant::now() + deadline;
    let mut tries = 0u32;
    loop {
        tries += 1;
        match std::net::TcpListener::bind(Testbed::server_addr()) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("listen (after {tries} tries): {e}")),
        }
    }
}

/// Timings of one migration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Migration {
    /// Connections moved.
    pub conns: usize,
    /// Queue bytes carried (receive + send, all connections).
    pub queued_bytes: u64,
    /// Image size.
    pub image_bytes: usize,
    /// From the lock in force on the source to the restored sockets out
    /// of repair mode and reachable: the connections' downtime.
    pub downtime: Duration,
    /// Taking the lock (`nft`), not part of the downtime.
    pub lock: Duration,
    /// Dumping every connection.
    pub dump: Duration,
    /// Serializing and parsing the image, closing the old sockets.
    pub image: Duration,
    /// Restoring every connection on the target.
    pub restore: Duration,
    /// Switching the route (one RTM_NEWROUTE, as `ip route replace`).
    pub switch: Duration,
    /// Leaving repair mode on every connection.
    pub finish: Duration,
}

/// Moves every connection from host `from` to the other host. The server
/// loop must be stopped (the connections handed over).
///
/// # Errors
/// Any step failing, as text.
pub fn migrate(
    bed: &Testbed,
    from: Host,
    conns: Vec<EchoConn>,
) -> Result<(Vec<EchoConn>, Migration), String> {
    let to = from.other();
    let mut m = Migration {
        conns: conns.len(),
        ..Migration::default()
    };
    // The target gets the address first (outside the downtime): the move
    // itself is the peer's route switching over.
    bed.address(to, true).map_err(tool_err)?;
    let tuples: Vec<(SocketAddr, SocketAddr)> = conns
        .iter()
        .map(|c| {
            let l = rustix::net::getsockname(&c.fd)
                .ok()
                .and_then(|a| SocketAddr::try_from(a).ok());
            let r = rustix::net::getpeername(&c.fd)
                .ok()
                .flatten()
                .and_then(|a| SocketAddr::try_from(a).ok());
            l.zip(r)
                .ok_or_else(|| "a connection has no address".to_owned())
        })
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let lock = NetLock::lock(Some(bed.host(from).path()), &tuples).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    m.lock = t0 - t;
    let mut images = Vec::with_capacity(conns.len());
    for c in &conns {
        images.push(dump(c.fd.as_fd()).map_err(|e| format!("dump: {e}"))?);
    }
    let t1 = Instant::now();
    m.dump = t1 - t0;
    let img = Image { conns: images };
    let bytes = img.to_bytes().map_err(|e| e.to_string())?;
    m.image_bytes = bytes.len();
    let img = Image::parse(&bytes).map_err(|e| e.to_string())?;
    m.queued_bytes = img
        .conns
        .iter()
        .map(|c| (c.recv_queue.len() + c.send_queue.len()) as u64)
        .sum();
    let mut apps = Vec::with_capacity(conns.len());
    for c in conns {
        close_silently(c.fd).map_err(|(_, e)| format!("close: {e}"))?;
        apps.push((c.pending, c.received, c.eof));
    }
    let t2 = Instant::now();
    m.image = t2 - t1;
    let restored = bed
        .host(to)
        .run_here(|| {
            img.conns
                .iter()
                .map(|c| restore(c, RestoreOptions::default()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(tool_err)?
        .map_err(|e| format!("restore: {e}"))?;
    let t3 = Instant::now();
    m.restore = t3 - t2;
    bed.route_to(to).map_err(tool_err)?;
    let t4 = Instant::now();
    m.switch = t4 - t3;
    let mut out = Vec::with_capacity(restored.len());
    for (r, (pending, received, eof)) in restored.into_iter().zip(apps) {
        let fd = r.finish().map_err(|e| format!("finish: {e}"))?;
        set_nonblocking(&fd);
        out.push(EchoConn {
            fd,
            pending,
            received,
            eof,
        });
    }
    let t5 = Instant::now();
    m.finish = t5 - t4;
    m.downtime = t5 - t0;
    lock.unlock().map_err(|e| e.to_string())?;
    bed.address(from, false).map_err(tool_err)?;
    Ok((out, m))
}

/// A packet capture of SYN and RST segments in a namespace (`tcpdump`),
/// written to a file as it runs (a pipe nobody reads would fill and make
/// tcpdump drop packets).
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    out: std::fs::File,
    err: Arc<std::sync::Mutex<String>>,
}

/// What a capture saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// Segments with SYN (SYN and SYN-ACK).
    pub syn: usize,
    /// Segments with RST.
    pub rst: usize,
    /// Distinct connections (address and port pairs) seen in SYN segments:
    /// handshakes. A SYN retransmitted during one handshake counts once; a
    /// new connection, once more.
    pub handshakes: usize,
    /// Packets the kernel dropped before tcpdump saw them (the counts are
    /// then lower bounds).
    pub dropped: u64,
}

impl Capture {
    /// Starts `tcpdump` on every interface of `ns`, for SYN and RST
    /// segments, and waits (at most 5 s) until it listens.
    ///
    /// # Errors
    /// `tcpdump` missing or not starting.
    pub fn start(ns: &Netns) -> Result<Capture, String> {
        let net = format!("--net={}", ns.path().display());
        let out = tempfile_anon().map_err(|e| format!("capture file: {e}"))?;
        let mut child = Command::new("nsenter")
            .args([
                &net,
                "tcpdump",
                "-i",
                "any",
                "-nn",
                "-l",
                // Each packet handed over at once: in the default mode the
                // last, partly filled ring block is still in the kernel
                // when the capture is interrupted, and its SYNs and RSTs
                // are lost.
                "--immediate-mode",
                "-B",
                "8192",
                "tcp[tcpflags] & (tcp-syn|tcp-rst) != 0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("tcpdump: {e} (install tcpdump)"))?;
        let mut err = child.stderr.take().ok_or("tcpdump: no stderr")?;
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let seen2 = Arc::clone(&seen);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut b = [0u8; 256];
            let mut told = false;
            while let Ok(n) = err.read(&mut b) {
                if n == 0 {
                    break;
                }
                let mut s = seen2
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.push_str(&String::from_utf8_lossy(&b[..n]));
                if !told && s.contains("listening on") {
                    let _ = tx.send(true);
                    told = true;
                }
            }
            if !told {
                let _ = tx.send(false);
            }
        });
        let cap = Capture {
            child: Some(child),
            out,
            err: seen,
        };
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(true) => Ok(cap),
            Ok(false) => Err(format!(
                "tcpdump did not start: {}",
                cap.err.lock().map(|s| s.clone()).unwrap_or_default()
            )),
            Err(_) => Err("tcpdump did not start within 5 s".into()),
        }
    }

    /// Stops the capture and counts SYN and RST segments.
    ///
    /// # Errors
    /// The capture could not be read.
    pub fn stop(mut self) -> Result<(Flags, Vec<String>), String> {
        use std::io::{Read as _, Seek as _};
        // Let the last segments reach tcpdump before it stops.
        std::thread::sleep(Duration::from_millis(50));
        let mut child = self.child.take().ok_or("capture already stopped")?;
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        child.wait().map_err(|e| e.to_string())?;
        let mut text = String::new();
        self.out.rewind().map_err(|e| e.to_string())?;
        self.out
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        let mut f = Flags::default();
        // tcpdump's closing summary: "N packets dropped by kernel".
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            let e = self.err.lock().map(|s| s.clone()).unwrap_or_default();
            if let Some(n) = e
                .lines()
                .find(|l| l.contains("dropped by kernel"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
            {
                f.dropped = n;
                break;
            }
            if Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut lines = Vec::new();
        let mut tuples = std::collections::BTreeSet::new();
        for l in text.lines() {
            let Some(flags) = l.split("Flags [").nth(1).and_then(|s| s.split(']').next()) else {
                continue;
            };
            if flags.contains('S') {
                f.syn += 1;
                // "... IP A.port > B.port: Flags [S], ..."
                if let Some(ends) = l
                    .split(" IP ")
                    .nth(1)
                    .and_then(|r| r.split(':').next())
                    .and_then(|r| r.split_once(" > "))
                {
                    let (a, b) = (ends.0.to_owned(), ends.1.to_owned());
                    tuples.insert(if a < b { (a, b) } else { (b, a) });
                }
            }
            if flags.contains('R') {
                f.rst += 1;
            }
            lines.push(l.to_owned());
        }
        f.handshakes = tuples.len();
        Ok((f, lines))
    }
}

/// An unnamed temporary file (`O_TMPFILE` in the system temp directory).
fn tempfile_anon() -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::open(
        std::env::temp_dir(),
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )?;
    Ok(std::fs::File::from(fd))
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Moves one connection in place, inside the calling thread's namespace:
/// dump, close silently, restore, leave repair mode. No lock: for timing
/// the repair mechanism alone (the caller makes sure nothing arrives in the
/// gap, e.g. an idle loopback connection).
///
/// # Errors
/// Any step failing, as text.
pub fn move_in_place(fd: OwnedFd) -> Result<OwnedFd, String> {
    let img = dump(fd.as_fd()).map_err(|e| format!("dump: {e}"))?;
    close_silently(fd).map_err(|(_, e)| format!("close: {e}"))?;
    restore(&img, RestoreOptions::default())
        .map_err(|e| format!("restore: {e}"))?
        .finish()
        .map_err(|e| format!("finish: {e}"))
}

/// A connected loopback pair in the calling thread's namespace:
/// `(client, server)`.
///
/// # Errors
/// A socket call failing.
pub fn loopback_pair() -> std::io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let c = std::net::TcpStream::connect(l.local_addr()?)?;
    let (s, _) = l.accept()?;
    Ok((c, s))
}
