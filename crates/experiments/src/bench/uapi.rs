//! Benchmarks for `klab bench`: klab's packet pipe and active references
//! timed against their peers in this process, reported as ratios. The
//! criterion benches (`crates/fs/uapi/benches/pipes.rs`,
//! `crates/fs/revocable/benches/active.rs`) measure the same operations
//! more thoroughly.

use std::hint::black_box;
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

use klab_revocable::Revocable;
use klab_uapi::pipe::{PipeConfig, PipeFlags, host, pipe};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Host, Report, Table, Verdict};

/// Nanoseconds per operation: the best of `rounds` runs of `n` calls.
fn time_ns(n: u64, rounds: u32, mut op: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            op();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn ratio_table(title: &str, base: &str, rows: &[(String, f64)]) -> Table {
    let base_ns = rows
        .iter()
        .find(|(n, _)| n == base)
        .map_or(f64::NAN, |r| r.1);
    let mut t = Table::new(
        title,
        &["variant", "ns per operation", &format!("time / {base}")],
    );
    for (name, ns) in rows {
        t.row(cells![name.clone(), *ns, *ns / base_ns]);
    }
    t
}

const SHARED_NOTE: &str = "one thread; best of 3 runs; numbers vary between runs and machines \
                           (measured on whatever else the machine is doing)";

/// `klab bench packet-pipe`.
pub struct PacketPipeBench;

impl PacketPipeBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "packet-pipe",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "A 304-byte record through klab's portable packet pipe, against the kernel's packet \
         pipe and std's sync_channel, written and read back on one thread.",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for PacketPipeBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let n = ctx.size(200_000u64, 20_000);
        r.config("records", n).config("record_bytes", 304u64);
        let rec = [7u8; 304];
        let mut buf = [0u8; 304];
        let flags = PipeFlags {
            packet: true,
            nonblock: true,
        };
        let mut rows = Vec::new();
        let (pr, pw) = pipe(PipeConfig::host(), flags);
        rows.push((
            "klab portable packet pipe".to_owned(),
            time_ns(n, 3, || {
                let _ = pw.write(black_box(&rec));
                let _ = black_box(pr.read(&mut buf));
            }),
        ));
        let mut notes = vec![SHARED_NOTE.to_owned()];
        match host::pipe(flags) {
            Ok((hr, hw)) => rows.push((
                "kernel pipe2(O_DIRECT)".to_owned(),
                time_ns(n, 3, || {
                    let _ = hw.write(black_box(&rec));
                    let _ = black_box(hr.read(&mut buf));
                }),
            )),
            Err(e) => notes.push(format!("kernel packet pipe unavailable: {e}")),
        }
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        rows.push((
            "std sync_channel<Vec<u8>>".to_owned(),
            time_ns(n, 3, || {
                let _ = tx.send(black_box(rec.to_vec()));
                let _ = black_box(rx.recv());
            }),
        ));
        let base = "kernel pipe2(O_DIRECT)";
        r.table(ratio_table(
            "Write + read of one 304-byte packet",
            base,
            &rows,
        ));
        let klab = rows[0].1;
        let kernel = rows.iter().find(|(n, _)| n == base).map(|r| r.1);
        r.verdict = Verdict {
            holds: None,
            measured: match kernel {
                Some(k) => format!(
                    "portable pipe {klab:.0} ns, kernel pipe {k:.0} ns per record ({:.2}x)",
                    klab / k
                ),
                None => format!("portable pipe {klab:.0} ns per record"),
            },
            note: "The kernel pipe costs two system calls per record; the portable pipe a \
                   mutex and a page-sized allocation per packet."
                .to_owned(),
        };
        r.host = Host::measured(notes);
        Ok(r)
    }
}

/// `klab bench active-refs`.
pub struct ActiveRefsBench;

impl ActiveRefsBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "active-refs",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "The cost of one sysfs operation's active reference (take and drop), against the \
         2.6.22 rwsem scheme (RwLock::try_read) and a plain Arc clone.",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for ActiveRefsBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let n = ctx.size(10_000_000u64, 1_000_000);
        r.config("operations", n);
        let rev = Revocable::new(42u64);
        let rw = RwLock::new(Some(42u64));
        let arc = Arc::new(42u64);
        let rows = vec![
            (
                "klab Revocable::try_get".to_owned(),
                time_ns(n, 3, || {
                    let _ = black_box(black_box(&rev).try_get().map(|g| *g));
                }),
            ),
            (
                "RwLock::try_read (2.6.22 rwsem)".to_owned(),
                time_ns(n, 3, || {
                    let _ = black_box(black_box(&rw).try_read().map(|g| *g));
                }),
            ),
            (
                "Arc::clone".to_owned(),
                time_ns(n, 3, || {
                    let _ = black_box(*Arc::clone(black_box(&arc)));
                }),
            ),
        ];
        let base = "RwLock::try_read (2.6.22 rwsem)";
        r.table(ratio_table("Take and drop one reference", base, &rows));
        r.verdict = Verdict {
            holds: None,
            measured: format!(
                "try_get {:.1} ns, RwLock::try_read {:.1} ns, Arc::clone {:.1} ns",
                rows[0].1, rows[1].1, rows[2].1
            ),
            note: "An active reference is a counter update plus the object's Arc (slot read \
                   lock, clone, drop)."
                .to_owned(),
        };
        r.host = Host::measured(vec![SHARED_NOTE.to_owned()]);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn benches_report_one_row_per_variant() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let p = PacketPipeBench.run(&ctx).unwrap();
        assert!(p.tables[0].rows.len() >= 2);
        assert!(!p.host.deterministic);
        let a = ActiveRefsBench.run(&ctx).unwrap();
        assert_eq!(a.tables[0].rows.len(), 3);
    }
}
