//! Experiment `tcp-repair`: move live TCP connections between two hosts
//! mid-stream and measure what the move costs, and whether the peer can
//! tell (seed 002, "TCP connection repair").
//!
//! Real, on this machine: three network namespaces (a peer and hosts A and
//! B, veth links, loopback-range addresses) built by
//! `klab_tcp_repair::testbed`. The peer streams a known byte sequence on
//! each connection and checks every echoed byte; the server's connections
//! are moved A -> B -> A ... with the repair options (lock, dump, close
//! silently, restore, route switch, repair off, unlock). A tcpdump in the
//! peer's namespace counts SYN and RST segments: one handshake per
//! connection and no reset means the peer never noticed.
//!
//! Measured: the downtime of each move (from the lock in force on the
//! source to the restored sockets out of repair mode and reachable), its
//! median and p99 over many moves of one connection, its growth with the
//! bytes queued in the sockets and with the number of connections moved at
//! once. Timings are wall-clock on a shared machine, so the report is
//! `Host::measured`. Without root (or without ip, nft, tcpdump) the report
//! says so and measures nothing.
//!
//! # Verdict
//!
//! The claim holds when the peer saw no error, no byte lost or repeated,
//! no RST and one handshake per connection, and a move costs under
//! [`MAX_MS_PER_CONNECTION`] per connection (the median of single moves,
//! and per connection in the largest batch). Without the privileges or
//! tools the verdict is null and says why.
//!
//! # When the claim fails
//!
//! When the peer's packets reach the source host while its sockets are
//! closed: without the nftables lock (or with it taken after the dump) the
//! source kernel answers the peer's segments for the silently closed
//! sockets with RST, and the peer sees the reset. klab's migration always
//! takes the lock first; `judge` is tested on data with a reset, a lost
//! byte and a slow move.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use klab_tcp_repair::netns::privileged;
use klab_tcp_repair::testbed::{
    self, Capture, EchoConn, Host, Migration, PeerConfig, PeerControl, PeerResult, ServerControl,
    Testbed,
};

use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Host as ReportHost, Report, Series, Table, Verdict};

/// The experiment.
pub struct TcpRepair;

/// Downtime per connection a move must stay under (klab's target: the
/// page gives no number).
pub const MAX_MS_PER_CONNECTION: f64 = 5.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p`-quantile (0..=1) of `v` by nearest rank; NaN when empty.
fn quantile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn tool_missing() -> Option<String> {
    ["ip", "nft", "tcpdump", "nsenter"]
        .into_iter()
        .find(|t| {
            std::process::Command::new(t)
                .arg("--version")
                .output()
                .is_err()
        })
        .map(|t| format!("`{t}` is not installed (.ci/setup.d/tcp-repair.sh installs it)"))
}

/// A running workload: the peer thread and the server connections.
struct Workload {
    peer: std::thread::JoinHandle<Result<PeerResult, String>>,
    control: Arc<PeerControl>,
    conns: Vec<EchoConn>,
    host: Host,
}

fn start(bed: &Testbed, host: Host, n: usize, rate: u64) -> Result<Workload, String> {
    let control = Arc::new(PeerControl::default());
    let listening = AtomicBool::new(false);
    let (conns, peer) = std::thread::scope(|s| {
        let acc = s.spawn(|| testbed::accept_on(bed, host, n, Duration::from_secs(20), &listening));
        let end = Instant::now() + Duration::from_secs(5);
        while !listening.load(Ordering::Acquire) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (p, _) = testbed::spawn_peer(
            bed,
            PeerConfig {
                conns: n,
                rate_bytes_per_sec: rate,
                max_bytes: 256 << 20,
                deadline: Duration::from_secs(60),
            },
            Arc::clone(&control),
        );
        (
            acc.join().unwrap_or_else(|_| Err("accept panicked".into())),
            p,
        )
    });
    Ok(Workload {
        peer,
        control,
        conns: conns?,
        host,
    })
}

/// Serves for `run_for`, running `during` on the way (it may set the
/// control's flags), then stops and returns the connections.
fn serve_for(
    conns: Vec<EchoConn>,
    run_for: Duration,
    during: impl FnOnce(&ServerControl),
) -> Vec<EchoConn> {
    let ctl = ServerControl::default();
    std::thread::scope(|s| {
        let h = s.spawn(|| testbed::serve(conns, &ctl));
        std::thread::sleep(run_for);
        during(&ctl);
        ctl.stop.store(true, Ordering::Release);
        h.join().unwrap_or_default()
    })
}

/// Moves every connection of `run` to the other host.
fn move_once(bed: &Testbed, run: &mut Workload) -> Result<Migration, String> {
    let conns = std::mem::take(&mut run.conns);
    let (c, m) = testbed::migrate(bed, run.host, conns)?;
    run.conns = c;
    run.host = run.host.other();
    Ok(m)
}

/// Lets the peer finish: everything it sent must come back. Returns what
/// it saw and the bytes the server received per connection.
fn finish(run: Workload) -> Result<(PeerResult, Vec<u64>, Host), String> {
    run.control.finish.store(true, Ordering::Release);
    let ctl = ServerControl::default();
    let (conns, res) = std::thread::scope(|s| {
        let h = s.spawn(|| testbed::serve(run.conns, &ctl));
        let r = run
            .peer
            .join()
            .unwrap_or_else(|_| Err("peer panicked".into()));
        ctl.stop.store(true, Ordering::Release);
        (h.join().unwrap_or_default(), r)
    });
    let res = res?;
    Ok((res, conns.iter().map(|c| c.received).collect(), run.host))
}

/// One move, its parts in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Move {
    /// From the lock in force to the restored sockets reachable.
    pub downtime: f64,
    /// Taking the lock (before the downtime).
    pub lock: f64,
    /// Dumping every connection.
    pub dump: f64,
    /// Writing and parsing the image, the silent close.
    pub image: f64,
    /// Restoring on the target.
    pub restore: f64,
    /// Switching the route.
    pub switch: f64,
    /// Leaving repair mode.
    pub finish: f64,
    /// Queue bytes carried.
    pub queued_bytes: u64,
    /// Image size.
    pub image_bytes: usize,
}

impl Move {
    fn of(m: &Migration) -> Self {
        Move {
            downtime: ms(m.downtime),
            lock: ms(m.lock),
            dump: ms(m.dump),
            image: ms(m.image),
            restore: ms(m.restore),
            switch: ms(m.switch),
            finish: ms(m.finish),
            queued_bytes: m.queued_bytes,
            image_bytes: m.image_bytes,
        }
    }
}

/// Totals over finished runs: what the peer saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Seen {
    /// Connections.
    pub conns: usize,
    /// Bytes the peer sent.
    pub sent: u64,
    /// Bytes echoed back and verified.
    pub echoed: u64,
    /// Bytes lost or repeated (server side and echo).
    pub lost: u64,
    /// The peer's errors.
    pub errors: Vec<String>,
    /// The longest stall it saw, in milliseconds.
    pub max_stall_ms: f64,
}

impl Seen {
    fn add(&mut self, res: &PeerResult, received: &[u64]) {
        self.conns += res.sent.len();
        self.sent += res.sent.iter().sum::<u64>();
        self.echoed += res.echoed.iter().sum::<u64>();
        for (i, s) in res.sent.iter().enumerate() {
            let got = received.get(i).copied().unwrap_or(0);
            self.lost += s.abs_diff(got) + s.abs_diff(res.echoed[i]);
        }
        self.errors.extend(res.errors.iter().cloned());
        self.max_stall_ms = self.max_stall_ms.max(ms(res.max_stall));
    }
}

/// Connections moved at once, a few times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Batch {
    /// Connections.
    pub conns: usize,
    /// Each move.
    pub moves: Vec<Move>,
    /// Bytes lost or repeated in this run.
    pub lost: u64,
    /// Peer errors in this run.
    pub errors: usize,
}

/// SYN and RST segments tcpdump saw in the peer's namespace.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Segments {
    /// SYN segments.
    pub syn: usize,
    /// RST segments.
    pub rst: usize,
    /// Distinct connections in SYN segments.
    pub handshakes: usize,
    /// Packets the capture dropped.
    pub dropped: u64,
}

/// What the live run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Live {
    /// Moves of one connection.
    pub single: Vec<Move>,
    /// Per queue target: its moves.
    pub by_queue: Vec<QueueMoves>,
    /// Per batch size.
    pub by_batch: Vec<Batch>,
    /// What the peer saw, all phases.
    pub seen: Seen,
    /// What the capture saw.
    pub segments: Segments,
}

/// What a run is measured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Moves of one connection.
    pub moves: usize,
    /// Bytes to queue in the socket before a move.
    pub queue_targets: Vec<u64>,
    /// Moves per queue target.
    pub moves_per_queue_target: usize,
    /// Connections moved at once.
    pub batch_sizes: Vec<usize>,
    /// Moves per batch size.
    pub moves_per_batch: usize,
}

impl Config {
    /// The built-in sizes (smaller with `--quick`).
    pub fn page(quick: bool) -> Self {
        if quick {
            Config {
                moves: 10,
                queue_targets: vec![0, 256 << 10],
                moves_per_queue_target: 2,
                batch_sizes: vec![1, 10, 100],
                moves_per_batch: 1,
            }
        } else {
            Config {
                moves: 100,
                queue_targets: vec![0, 64 << 10, 256 << 10, 1 << 20],
                moves_per_queue_target: 5,
                batch_sizes: vec![1, 10, 100, 1000],
                moves_per_batch: 3,
            }
        }
    }
}

/// What the run measured, or why it measured nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// The configuration.
    pub config: Config,
    /// The measurement, or why it was skipped.
    pub live: Result<Live, String>,
}

/// Why this host cannot run the experiment, if it cannot.
fn skip_reason() -> Option<String> {
    if !privileged() {
        Some(
            "no CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root): TCP_REPAIR and the nftables \
             lock need the first, the test network's namespaces the second"
                .to_owned(),
        )
    } else {
        tool_missing()
    }
}

/// The moves made with the queues filled to one target: (bytes, moves).
pub type QueueMoves = (u64, Vec<Move>);

/// Phases 1 and 2: one connection moved many times, then with its queues
/// filled first. Returns the moves, the moves per queue target and where
/// the connection ended.
fn one_connection(
    ctx: &Ctx<'_>,
    bed: &Testbed,
    cfg: &Config,
    seen: &mut Seen,
) -> Result<(Vec<Move>, Vec<QueueMoves>, Host), String> {
    ctx.progress
        .begin("tcp-repair: moves of one connection", cfg.moves as u64);
    let mut run = start(bed, Host::A, 1, 8 << 20)?;
    let mut single = Vec::with_capacity(cfg.moves);
    for _ in 0..cfg.moves {
        run.conns = serve_for(
            std::mem::take(&mut run.conns),
            Duration::from_millis(15),
            |_| {},
        );
        single.push(Move::of(&move_once(bed, &mut run)?));
        ctx.progress.advance(1);
    }
    ctx.progress.end();
    let reps = cfg.moves_per_queue_target;
    ctx.progress.begin(
        "tcp-repair: queue sizes",
        (cfg.queue_targets.len() * reps) as u64,
    );
    let mut by_queue = Vec::new();
    for &target in &cfg.queue_targets {
        let mut list = Vec::with_capacity(reps);
        for _ in 0..reps {
            let pc = Arc::clone(&run.control);
            run.conns = serve_for(
                std::mem::take(&mut run.conns),
                Duration::from_millis(5),
                |ctl| {
                    if target == 0 {
                        return;
                    }
                    // Both ends stop reading: the server's receive queue and
                    // its send queue fill from the stream.
                    ctl.measure_queues.store(true, Ordering::Relaxed);
                    ctl.pause_reading.store(true, Ordering::Relaxed);
                    pc.pause_reading.store(true, Ordering::Relaxed);
                    let end = Instant::now() + Duration::from_secs(2);
                    while ctl.queued.load(Ordering::Relaxed) < target && Instant::now() < end {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                },
            );
            let m = move_once(bed, &mut run)?;
            run.control.pause_reading.store(false, Ordering::Relaxed);
            list.push(Move::of(&m));
            ctx.progress.advance(1);
        }
        by_queue.push((target, list));
    }
    ctx.progress.end();
    let (res, received, host) = finish(run)?;
    seen.add(&res, &received);
    Ok((single, by_queue, host))
}

/// Phase 3: many connections moved at once.
fn batches(
    ctx: &Ctx<'_>,
    bed: &Testbed,
    cfg: &Config,
    mut cur: Host,
    seen: &mut Seen,
) -> Result<Vec<Batch>, String> {
    ctx.progress.begin(
        "tcp-repair: connections moved at once",
        cfg.batch_sizes.len() as u64,
    );
    let mut out = Vec::new();
    for &n in &cfg.batch_sizes {
        let rate = (64u64 << 20) / n as u64;
        let mut run = start(bed, cur, n, rate)?;
        let mut moves = Vec::new();
        for _ in 0..cfg.moves_per_batch {
            run.conns = serve_for(
                std::mem::take(&mut run.conns),
                Duration::from_millis(40),
                |_| {},
            );
            moves.push(Move::of(&move_once(bed, &mut run)?));
        }
        let (res, received, h) = finish(run)?;
        cur = h;
        let mut one = Seen::default();
        one.add(&res, &received);
        seen.add(&res, &received);
        out.push(Batch {
            conns: n,
            moves,
            lost: one.lost,
            errors: one.errors.len(),
        });
        ctx.progress.advance(1);
    }
    ctx.progress.end();
    Ok(out)
}

/// The downtimes of `moves`, one part.
fn part(moves: &[Move], f: fn(&Move) -> f64) -> Vec<f64> {
    moves.iter().map(f).collect()
}

/// The single-move statistics the verdict uses: (median, p99, per
/// connection in the largest batch, its size).
fn headline(l: &Live) -> (f64, f64, f64, usize) {
    let d = part(&l.single, |m| m.downtime);
    let largest = l.by_batch.last();
    let per = largest.map_or(f64::NAN, |b| {
        quantile(&part(&b.moves, |m| m.downtime), 0.5) / b.conns as f64
    });
    (
        quantile(&d, 0.5),
        quantile(&d, 0.99),
        per,
        largest.map_or(0, |b| b.conns),
    )
}

const NOTE: &str = "Downtime starts when the nft lock is in force on the source and ends when \
     the restored sockets are out of repair mode with the peer's route switched; taking the \
     lock (an nft process) comes before it. On a loaded machine the p99 is the scheduler's (a \
     preempted controller thread), not the kernel's. The longest stall the peer saw includes \
     TCP's own retransmission timers (routes carry rto_min 5ms; a restored socket starts with \
     the initial 1 s RTO). Wall-clock timings on this machine.";

impl Experiment for TcpRepair {
    type Data = Data;

    const ID: Identity = Identity {
        name: "tcp-repair",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "With TCP_REPAIR a live connection can be dumped, closed without a word, and restored \
         on another host, and the remote end does not notice: no byte lost or repeated, no \
         reset, no new handshake",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        let config = Config::page(ctx.quick);
        if let Some(why) = skip_reason() {
            return Ok(Data {
                config,
                live: Err(why),
            });
        }
        let bed = match Testbed::create() {
            Ok(b) => b,
            // The host refuses namespaces or veth links: say so.
            Err(e) => {
                return Ok(Data {
                    config,
                    live: Err(format!("cannot build the test network: {e}")),
                });
            }
        };
        let host = |e: String| ExperimentError::Host(e);
        let cap = Capture::start(&bed.peer).map_err(host)?;
        let mut seen = Seen::default();
        let (single, by_queue, cur) =
            one_connection(ctx, &bed, &config, &mut seen).map_err(host)?;
        let by_batch = batches(ctx, &bed, &config, cur, &mut seen).map_err(host)?;
        let (flags, _lines) = cap.stop().map_err(host)?;
        Ok(Data {
            config,
            live: Ok(Live {
                single,
                by_queue,
                by_batch,
                seen,
                segments: Segments {
                    syn: flags.syn,
                    rst: flags.rst,
                    handshakes: flags.handshakes,
                    dropped: flags.dropped,
                },
            }),
        })
    }

    fn judge(&self, d: &Data) -> Verdict {
        let l = match &d.live {
            Ok(l) => l,
            Err(why) => {
                return Verdict {
                    holds: None,
                    measured: "nothing measured".into(),
                    note: format!("skipped: {why}"),
                };
            }
        };
        let (med, p99, per_conn, largest) = headline(l);
        let (seen, f) = (&l.seen, &l.segments);
        // A capture that dropped packets gives lower bounds: then the
        // handshakes may only fall short, never exceed one per connection.
        let syn_ok = if f.dropped == 0 {
            f.handshakes == seen.conns
        } else {
            f.handshakes <= seen.conns
        };
        let unnoticed = seen.errors.is_empty() && seen.lost == 0 && f.rst == 0 && syn_ok;
        let fast = med < MAX_MS_PER_CONNECTION && per_conn < MAX_MS_PER_CONNECTION;
        let errors = if seen.errors.is_empty() {
            String::new()
        } else {
            format!(
                "; peer errors: {}",
                seen.errors
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        Verdict {
            holds: Some(unnoticed && fast),
            measured: format!(
                "{} moves of one connection: downtime median {med:.2} ms, p99 {p99:.2} ms; {largest} \
                 connections moved at once: {per_conn:.3} ms per connection; the peer sent {} \
                 bytes on {} connections, {} lost or repeated, {} RST, {} SYN segments in {} \
                 handshakes for {} connections{errors}",
                l.single.len(),
                seen.sent,
                seen.conns,
                seen.lost,
                f.rst,
                f.syn,
                f.handshakes,
                seen.conns,
            ),
            note: format!(
                "target: under {MAX_MS_PER_CONNECTION} ms per connection (the median of single \
                 moves, and per connection in the largest batch), klab's target: the page gives \
                 no number. {NOTE}"
            ),
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        let c = &d.config;
        r.config("moves_of_one_connection", c.moves)
            .config("queue_targets_bytes", format!("{:?}", c.queue_targets))
            .config("moves_per_queue_target", c.moves_per_queue_target)
            .config("batch_sizes", format!("{:?}", c.batch_sizes))
            .config("threshold.max_ms_per_connection", MAX_MS_PER_CONNECTION);
        match &d.live {
            Ok(l) => live_report(l, r),
            Err(why) => r.host = ReportHost::measured(vec![format!("skipped: {why}")]),
        }
    }
}

/// The tables, plots and host notes of a live run.
fn live_report(l: &Live, r: &mut Report) {
    let mut t = Table::new(
        "Moving one connection mid-stream (A <-> B): downtime and its parts",
        &["part", "median (ms)", "p99 (ms)", "max (ms)"],
    );
    type Part = fn(&Move) -> f64;
    let parts: [(&str, Part); 7] = [
        ("downtime: lock in force -> restored and reachable", |m| {
            m.downtime
        }),
        ("  dump (TCP_REPAIR, queues, options, window)", |m| m.dump),
        ("  image write + parse, silent close", |m| m.image),
        ("  restore on the target (repair mode)", |m| m.restore),
        ("  route switch (RTM_NEWROUTE)", |m| m.switch),
        ("  leave repair mode (window probe)", |m| m.finish),
        ("before it: take the lock (nft)", |m| m.lock),
    ];
    for (name, f) in parts {
        let v = part(&l.single, f);
        t.row(cells![
            name,
            quantile(&v, 0.5),
            quantile(&v, 0.99),
            quantile(&v, 1.0)
        ]);
    }
    r.table(t);
    let mut tq = Table::new(
        "Downtime against the bytes queued in the socket (receive + send queues)",
        &[
            "target (bytes)",
            "moves",
            "queued, median (bytes)",
            "image, median (bytes)",
            "downtime median (ms)",
            "downtime max (ms)",
        ],
    );
    let mut sq = Vec::new();
    for (target, list) in &l.by_queue {
        let q = part(list, |m| m.queued_bytes as f64);
        let img = part(list, |m| m.image_bytes as f64);
        let d = part(list, |m| m.downtime);
        tq.row(cells![
            *target,
            list.len(),
            quantile(&q, 0.5) as u64,
            quantile(&img, 0.5) as u64,
            quantile(&d, 0.5),
            quantile(&d, 1.0)
        ]);
        sq.extend(
            list.iter()
                .map(|m| [m.queued_bytes as f64 / 1024.0, m.downtime]),
        );
    }
    sq.sort_by(|a, b| a[0].total_cmp(&b[0]));
    r.table(tq);
    batch_report(l, r);
    let mut s1 = Series::new(
        "Downtime of each move of one connection",
        Axis::linear("move", ""),
        Axis::linear("downtime", "ms"),
    )
    .scatter();
    s1.line(
        "downtime",
        l.single
            .iter()
            .enumerate()
            .map(|(i, m)| [i as f64, m.downtime])
            .collect(),
    );
    r.series(s1);
    let mut s2 = Series::new(
        "Downtime against bytes queued in the socket",
        Axis::linear("queued", "KiB"),
        Axis::linear("downtime", "ms"),
    )
    .scatter();
    s2.line("one connection", sq);
    r.series(s2);
    let mut s3 = Series::new(
        "Downtime against connections moved at once",
        Axis::log("connections moved", ""),
        Axis::log("downtime", "ms"),
    );
    let med = |b: &Batch| quantile(&part(&b.moves, |m| m.downtime), 0.5);
    s3.line(
        "whole move",
        l.by_batch
            .iter()
            .map(|b| [b.conns as f64, med(b)])
            .collect(),
    );
    s3.line(
        "per connection",
        l.by_batch
            .iter()
            .map(|b| [b.conns as f64, med(b) / b.conns as f64])
            .collect(),
    );
    r.series(s3);
    let f = &l.segments;
    r.host = ReportHost::measured(vec![
        "real sockets in three network namespaces (peer, host A, host B), veth links, 127.77.0.0/16 addresses".into(),
        format!(
            "{} SYN and {} RST segments captured by tcpdump in the peer's namespace ({} packets dropped by the capture)",
            f.syn, f.rst, f.dropped
        ),
    ]);
}

/// The batches' table and what the peer saw.
fn batch_report(l: &Live, r: &mut Report) {
    let mut tb = Table::new(
        "Moving n connections at once",
        &[
            "connections",
            "moves",
            "downtime median (ms)",
            "per connection (ms)",
            "dump (ms)",
            "restore (ms)",
            "image (bytes)",
            "bytes lost",
            "peer errors",
        ],
    );
    for b in &l.by_batch {
        let dm = quantile(&part(&b.moves, |m| m.downtime), 0.5);
        tb.row(cells![
            b.conns,
            b.moves.len(),
            dm,
            dm / b.conns as f64,
            quantile(&part(&b.moves, |m| m.dump), 0.5),
            quantile(&part(&b.moves, |m| m.restore), 0.5),
            b.moves.iter().map(|m| m.image_bytes).max().unwrap_or(0),
            b.lost,
            b.errors
        ]);
    }
    r.table(tb);
    let (seen, f) = (&l.seen, &l.segments);
    let mut tp = Table::new(
        "What the peer saw (all phases; tcpdump in the peer's namespace)",
        &[
            "connections",
            "bytes sent",
            "bytes echoed",
            "bytes lost or repeated",
            "RST segments",
            "SYN segments",
            "handshakes (distinct SYN tuples)",
            "longest stall (ms)",
        ],
    );
    tp.row(cells![
        seen.conns,
        seen.sent,
        seen.echoed,
        seen.lost,
        f.rst,
        f.syn,
        f.handshakes,
        seen.max_stall_ms
    ]);
    r.table(tp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.99), 5.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    fn live() -> Live {
        let mv = |downtime| Move {
            downtime,
            ..Move::default()
        };
        Live {
            single: (1..=10).map(|i| mv(0.1 * f64::from(i))).collect(),
            by_queue: vec![(0, vec![mv(0.3)])],
            by_batch: vec![Batch {
                conns: 100,
                moves: vec![mv(12.0)],
                lost: 0,
                errors: 0,
            }],
            seen: Seen {
                conns: 2,
                sent: 1000,
                echoed: 1000,
                ..Seen::default()
            },
            segments: Segments {
                syn: 4,
                rst: 0,
                handshakes: 2,
                dropped: 0,
            },
        }
    }

    #[test]
    fn the_verdict_fails_on_a_reset_a_lost_byte_or_a_slow_move() {
        let d = |l: Live| Data {
            config: Config::page(true),
            live: Ok(l),
        };
        let v = TcpRepair.judge(&d(live()));
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(
            v.measured.starts_with(
                "10 moves of one connection: downtime median 0.50 ms, p99 1.00 ms; 100 \
                 connections moved at once: 0.120 ms per connection"
            ),
            "{}",
            v.measured
        );
        let mut reset = live();
        reset.segments.rst = 1;
        assert_eq!(TcpRepair.judge(&d(reset)).holds, Some(false));
        let mut lost = live();
        lost.seen.lost = 1;
        assert_eq!(TcpRepair.judge(&d(lost)).holds, Some(false));
        let mut second_handshake = live();
        second_handshake.segments.handshakes = 3;
        assert_eq!(TcpRepair.judge(&d(second_handshake)).holds, Some(false));
        let mut slow = live();
        slow.single.iter_mut().for_each(|m| m.downtime += 6.0);
        assert_eq!(TcpRepair.judge(&d(slow)).holds, Some(false));
        let skipped = TcpRepair.judge(&Data {
            config: Config::page(true),
            live: Err("no root".into()),
        });
        assert_eq!(
            (skipped.holds, skipped.note.as_str()),
            (None, "skipped: no root")
        );
    }
}
