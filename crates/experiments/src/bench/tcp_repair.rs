//! Benchmark `tcp-repair`: moving an idle loopback connection in place
//! (dump, silent close, restore, repair off) against its peer, opening a
//! new connection (connect + accept, a full handshake), in one process, in
//! a private network namespace. The same workload as the criterion bench
//! `crates/net/tcp-repair/benches/move_vs_connect.rs`.
//!
//! After the moves, each end sends a byte to the other through the moved
//! socket: the connection was kept only if both arrive. The verdict needs
//! that, and a move costing at most [`MAX_MOVE_OVER_CONNECT`] times a new
//! connection ("about what opening a new one costs").
//!
//! # When the claim fails
//!
//! With the network lock in the loop: locking the 4-tuple with nftables
//! (as `klab tcp-repair migrate` does) runs an `nft` process, which costs
//! milliseconds, hundreds of times a handshake on loopback; the
//! `tcp-repair` experiment times that path. Without CAP_NET_ADMIN and
//! CAP_SYS_ADMIN nothing is measured and the verdict is null.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use klab_tcp_repair::netns::{Netns, privileged, unique_name};
use klab_tcp_repair::testbed::{loopback_pair, move_in_place};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Host, Report, Table, Verdict};

/// The benchmark.
pub struct TcpRepairBench;

/// A move may take at most this many times a new connection.
pub const MAX_MOVE_OVER_CONNECT: f64 = 2.0;

/// What the bench measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpRepairData {
    /// Moves, and new connections, timed.
    pub iterations: usize,
    /// Why nothing was measured, if nothing was.
    pub skipped: Option<String>,
    /// ns per move in place.
    pub move_ns: f64,
    /// ns per new connection.
    pub connect_ns: f64,
    /// Both ends exchanged a byte through the moved socket.
    pub kept: bool,
}

/// One byte each way through `a` and `b`, with a bounded wait.
fn exchange(a: &mut TcpStream, b: &mut TcpStream) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    for s in [&*a, &*b] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
    }
    let mut got = [0u8; 1];
    a.write_all(b"a").map_err(io)?;
    b.read_exact(&mut got).map_err(io)?;
    let there = got == *b"a";
    b.write_all(b"b").map_err(io)?;
    a.read_exact(&mut got).map_err(io)?;
    Ok(there && got == *b"b")
}

/// Moves a server socket `n` times, then opens `n` connections; checks the
/// moved connection still carries bytes both ways.
fn move_and_connect(n: usize) -> Result<(f64, f64, bool), String> {
    let (mut client, server) = loopback_pair().map_err(|e| e.to_string())?;
    let mut fd = OwnedFd::from(server);
    let t = Instant::now();
    for _ in 0..n {
        fd = move_in_place(fd)?;
    }
    let mv = t.elapsed().as_nanos() as f64 / n as f64;
    let kept = exchange(&mut client, &mut TcpStream::from(fd))?;
    let t = Instant::now();
    for _ in 0..n {
        drop(loopback_pair().map_err(|e| e.to_string())?);
    }
    let cn = t.elapsed().as_nanos() as f64 / n as f64;
    Ok((mv, cn, kept))
}

impl Experiment for TcpRepairBench {
    type Data = TcpRepairData;

    const ID: Identity = Identity {
        name: "tcp-repair",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "Moving a live connection with TCP_REPAIR (dump + restore) costs about what opening a \
         new one costs, and keeps the connection",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<TcpRepairData, ExperimentError> {
        let iterations = ctx.size(5000usize, 300);
        if !privileged() {
            return Ok(TcpRepairData {
                iterations,
                skipped: Some("skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root)".into()),
                move_ns: f64::NAN,
                connect_ns: f64::NAN,
                kept: false,
            });
        }
        let host = |e: String| ExperimentError::Host(e);
        let ns = Netns::create(&unique_name("bench")).map_err(|e| host(e.to_string()))?;
        let (move_ns, connect_ns, kept) = ns
            .run(|| move_and_connect(iterations))
            .map_err(|e| host(e.to_string()))?
            .map_err(host)?;
        Ok(TcpRepairData {
            iterations,
            skipped: None,
            move_ns,
            connect_ns,
            kept,
        })
    }

    fn judge(&self, d: &TcpRepairData) -> Verdict {
        if let Some(why) = &d.skipped {
            return Verdict {
                holds: None,
                measured: "nothing measured".into(),
                note: why.clone(),
            };
        }
        let ratio = d.move_ns / d.connect_ns;
        Verdict {
            holds: Some(d.kept && ratio <= MAX_MOVE_OVER_CONNECT),
            measured: format!(
                "moving a connection takes {:.1} µs, {ratio:.2}x a new connection's {:.1} µs \
                 (target <= {MAX_MOVE_OVER_CONNECT}); after {} moves the connection {}",
                d.move_ns / 1e3,
                d.connect_ns / 1e3,
                d.iterations,
                if d.kept {
                    "carried a byte each way"
                } else {
                    "did not carry a byte each way"
                }
            ),
            note: "no network lock in this loop (an nft process costs milliseconds and is timed \
                   by the tcp-repair experiment); wall-clock on a shared machine"
                .into(),
        }
    }

    fn report(&self, d: &TcpRepairData, _: &Verdict, r: &mut Report) {
        r.config("iterations", d.iterations)
            .config("threshold.max_move_over_connect", MAX_MOVE_OVER_CONNECT);
        if let Some(why) = &d.skipped {
            r.host = Host::measured(vec![why.clone()]);
            return;
        }
        let mut t = Table::new(
            "One idle loopback connection, per operation",
            &["operation", "time (µs)", "ratio to a new connection"],
        );
        t.row(cells![
            "move in place: dump + silent close + restore + repair off",
            d.move_ns / 1e3,
            d.move_ns / d.connect_ns
        ]);
        t.row(cells![
            "peer: new connection (connect + accept)",
            d.connect_ns / 1e3,
            1.0
        ]);
        r.table(t);
        r.host = Host::measured(vec![
            "real loopback sockets in a private network namespace".into(),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(move_ns: f64, connect_ns: f64, kept: bool) -> TcpRepairData {
        TcpRepairData {
            iterations: 300,
            skipped: None,
            move_ns,
            connect_ns,
            kept,
        }
    }

    #[test]
    fn a_slow_move_or_a_lost_connection_fails() {
        let v = TcpRepairBench.judge(&data(30_000.0, 40_000.0, true));
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(v.measured.contains("0.75x"), "{}", v.measured);
        // Three times a handshake.
        assert_eq!(
            TcpRepairBench.judge(&data(120_000.0, 40_000.0, true)).holds,
            Some(false)
        );
        // Fast, but the connection no longer carries bytes.
        let v = TcpRepairBench.judge(&data(30_000.0, 40_000.0, false));
        assert_eq!(v.holds, Some(false));
        assert!(v.measured.contains("did not carry"), "{}", v.measured);
    }

    #[test]
    fn without_privileges_nothing_is_judged() {
        let mut d = data(f64::NAN, f64::NAN, false);
        d.skipped = Some("skipped: needs root".into());
        let v = TcpRepairBench.judge(&d);
        assert_eq!(v.holds, None);
        assert_eq!(v.note, "skipped: needs root");
    }

    /// A real move where the host allows it: the moved connection must
    /// carry bytes (whether the move was fast enough is a timing, not
    /// asserted).
    #[test]
    fn a_moved_connection_carries_bytes() {
        if !privileged() {
            eprintln!("skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN");
            return;
        }
        let ns = match Netns::create(&unique_name("benchtest")) {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!("skipped: no network namespace: {e}");
                return;
            }
        };
        let (move_ns, connect_ns, kept) = ns.run(|| move_and_connect(20)).unwrap().unwrap();
        assert!(kept, "the moved connection lost its bytes");
        let v = TcpRepairBench.judge(&data(move_ns, connect_ns, kept));
        assert_eq!(v.holds, Some(move_ns / connect_ns <= MAX_MOVE_OVER_CONNECT));
    }
}
