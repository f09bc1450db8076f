//! Benchmark `tcp-repair`: moving an idle loopback connection in place
//! (dump, silent close, restore, repair off) against its peer, opening a
//! new connection (connect + accept, a full handshake), in one process, in
//! a private network namespace. The same workload as the criterion bench
//! `crates/net/tcp-repair/benches/move_vs_connect.rs`.

use std::os::fd::OwnedFd;
use std::time::Instant;

use klab_tcp_repair::netns::{Netns, privileged, unique_name};
use klab_tcp_repair::testbed::{loopback_pair, move_in_place};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Host, Report, Table, Verdict};

/// The benchmark.
pub struct TcpRepairBench;

impl TcpRepairBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "tcp-repair",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "Moving a live connection with TCP_REPAIR (dump + restore) costs about what opening a \
         new one costs, and keeps the connection",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for TcpRepairBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let n = ctx.size(5000usize, 300);
        r.config("iterations", n);
        if !privileged() {
            let why = "skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root)".to_owned();
            r.host = Host::measured(vec![why.clone()]);
            r.verdict = Verdict {
                holds: None,
                measured: "nothing measured".into(),
                note: why,
            };
            return Ok(r);
        }
        let host = |e: String| ExperimentError::Host(e);
        let ns = Netns::create(&unique_name("bench")).map_err(|e| host(e.to_string()))?;
        let (move_ns, connect_ns) = ns
            .run(|| -> Result<(f64, f64), String> {
                let (_client, server) = loopback_pair().map_err(|e| e.to_string())?;
                let mut fd = OwnedFd::from(server);
                let t = Instant::now();
                for _ in 0..n {
                    fd = move_in_place(fd)?;
                }
                let mv = t.elapsed().as_nanos() as f64 / n as f64;
                let t = Instant::now();
                for _ in 0..n {
                    drop(loopback_pair().map_err(|e| e.to_string())?);
                }
                let cn = t.elapsed().as_nanos() as f64 / n as f64;
                Ok((mv, cn))
            })
            .map_err(|e| host(e.to_string()))?
            .map_err(host)?;
        let mut t = Table::new(
            "One idle loopback connection, per operation",
            &["operation", "time (µs)", "ratio to a new connection"],
        );
        t.row(cells![
            "move in place: dump + silent close + restore + repair off",
            move_ns / 1e3,
            move_ns / connect_ns
        ]);
        t.row(cells![
            "peer: new connection (connect + accept)",
            connect_ns / 1e3,
            1.0
        ]);
        r.table(t);
        r.verdict = Verdict {
            holds: None,
            measured: format!(
                "moving a connection takes {:.1} µs, {:.2}x a new connection's {:.1} µs",
                move_ns / 1e3,
                move_ns / connect_ns,
                connect_ns / 1e3
            ),
            note: "no network lock in this loop (an nft process costs milliseconds and is timed \
                   by the tcp-repair experiment); wall-clock on a shared machine"
                .into(),
        };
        r.host = Host::measured(vec![
            "real loopback sockets in a private network namespace".into(),
        ]);
        Ok(r)
    }
}
