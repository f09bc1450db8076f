//! Benchmarks for `klab bench`: klab's packet pipe and active references
//! timed against their peers in this process, reported as ratios. The
//! criterion benches (`crates/fs/uapi/benches/pipes.rs`,
//! `crates/fs/revocable/benches/active.rs`) measure the same operations
//! more thoroughly.
//!
//! Each variant runs `n` operations per round, the variants taking turns
//! for [`ROUNDS`] rounds; the fastest round of each counts, timed by the
//! thread's CPU time where the kernel exposes it (`bench::timing`).
//!
//! * `packet-pipe`: a record written into a packet-mode pipe and read back
//!   on one thread: klab's portable pipe (a mutex and a page-sized buffer
//!   per packet), the kernel's `pipe2(O_DIRECT)` (two system calls), std's
//!   `sync_channel`. The claim: klab's portable pipe is no slower than the
//!   kernel's for the 304-byte record autofs sends
//!   ([`MAX_PIPE_OVER_KERNEL`]).
//! * `active-refs`: one sysfs operation's active reference, taken and
//!   dropped: klab's `Revocable::try_get` (the 2.6.23 counter,
//!   `kernfs_get_active()`, plus a read lock on the object's slot), the
//!   2.6.22 scheme (`down_read_trylock` on an rwsem: `RwLock::try_read`), a
//!   plain `Arc` clone. The claim: the counter that replaced the rwsem costs
//!   no more than the rwsem did; klab's reference being the counter plus
//!   one read lock, that is `try_get <= 2 x try_read`
//!   ([`MAX_ACTIVE_OVER_RWSEM`]).
//!
//! # When the claim fails
//!
//! `packet-pipe`: with records a page long, the portable pipe copies a
//! page into a fresh buffer where the kernel copies into its own pages; the
//! table's 4096-byte rows measure that case beside the 304-byte one.
//! `active-refs`: when the counter's compare-and-swap loop costs more than
//! the rwsem's read side, as on a machine where an uncontended
//! compare-and-swap is dearer than the lock's fetch-add; the verdict then
//! says false with the measured counter and lock costs.

use std::hint::black_box;
use std::sync::{Arc, RwLock, mpsc};

use klab_revocable::Revocable;
use klab_uapi::pipe::{PipeConfig, PipeFlags, host, pipe};
use serde::{Deserialize, Serialize};

use super::timing;
use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Host, Report, Table, Verdict};

/// Rounds each variant runs, in turn with the others.
pub const ROUNDS: usize = 3;

/// Nanoseconds per operation of each of `ops`: [`ROUNDS`] rounds of `n`
/// calls, the ops taking turns; the fastest round of each.
fn interleaved(n: u64, ops: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; ops.len()];
    for _ in 0..ROUNDS {
        for (op, b) in ops.iter_mut().zip(&mut best) {
            let ((), e) = timing::time(|| {
                for _ in 0..n {
                    op();
                }
            });
            *b = b.min(e.best_known_s() * 1e9 / n as f64);
        }
    }
    best
}

const SHARED_NOTE: &str = "one thread; the variants take turns, fastest of 3 rounds, timed by \
                           the thread's CPU time where readable; numbers vary between runs and \
                           machines";

/// `klab bench packet-pipe`.
pub struct PacketPipeBench;

/// The record the claim is about: autofs's v5 packet.
pub const CLAIM_RECORD_BYTES: usize = 304;

/// The record sizes measured.
pub const RECORD_BYTES: [usize; 2] = [CLAIM_RECORD_BYTES, 4096];

/// The claim holds when klab's portable pipe takes at most this many times
/// the kernel pipe's time per record.
pub const MAX_PIPE_OVER_KERNEL: f64 = 1.0;

/// One record size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipeRow {
    /// Bytes per record.
    pub record_bytes: usize,
    /// klab's portable packet pipe, ns per record.
    pub portable_ns: f64,
    /// The kernel's `pipe2(O_DIRECT)`, when it could be created.
    pub kernel_ns: Option<f64>,
    /// std's `sync_channel<Vec<u8>>`.
    pub channel_ns: f64,
}

/// What `packet-pipe` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipeData {
    /// Records per round.
    pub records: u64,
    /// One row per record size.
    pub rows: Vec<PipeRow>,
    /// Why the kernel's packet pipe could not be created, if it could not.
    pub kernel_unavailable: Option<String>,
}

/// Times the three pipes for one record size.
fn pipe_row(n: u64, record_bytes: usize) -> (PipeRow, Option<String>) {
    let rec = vec![7u8; record_bytes];
    let mut buf = vec![0u8; record_bytes];
    let mut buf2 = vec![0u8; record_bytes];
    let flags = PipeFlags {
        packet: true,
        nonblock: true,
    };
    let (pr, pw) = pipe(PipeConfig::host(), flags);
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
    let mut portable = || {
        let _ = pw.write(black_box(&rec));
        let _ = black_box(pr.read(&mut buf));
    };
    let mut channel = || {
        let _ = tx.send(black_box(rec.clone()));
        let _ = black_box(rx.recv());
    };
    match host::pipe(flags) {
        Ok((hr, hw)) => {
            let mut kernel = || {
                let _ = hw.write(black_box(&rec));
                let _ = black_box(hr.read(&mut buf2));
            };
            let t = interleaved(n, &mut [&mut portable, &mut kernel, &mut channel]);
            let row = PipeRow {
                record_bytes,
                portable_ns: t[0],
                kernel_ns: Some(t[1]),
                channel_ns: t[2],
            };
            (row, None)
        }
        Err(e) => {
            let t = interleaved(n, &mut [&mut portable, &mut channel]);
            let row = PipeRow {
                record_bytes,
                portable_ns: t[0],
                kernel_ns: None,
                channel_ns: t[1],
            };
            (row, Some(e.to_string()))
        }
    }
}

impl Experiment for PacketPipeBench {
    type Data = PipeData;

    const ID: Identity = Identity {
        name: "packet-pipe",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "klab's portable packet pipe moves a 304-byte record (written and read back on one \
                thread) no slower than the kernel's packet pipe, pipe2(O_DIRECT); std's \
                sync_channel beside them",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<PipeData, ExperimentError> {
        let records = ctx.size(200_000u64, 20_000);
        let mut rows = Vec::new();
        let mut kernel_unavailable = None;
        for bytes in RECORD_BYTES {
            let (row, why) = pipe_row(records, bytes);
            rows.push(row);
            kernel_unavailable = kernel_unavailable.or(why);
        }
        Ok(PipeData {
            records,
            rows,
            kernel_unavailable,
        })
    }

    fn judge(&self, d: &PipeData) -> Verdict {
        let note = "The kernel pipe costs two system calls per record; the portable pipe a mutex \
                    and a page-sized buffer per packet."
            .to_owned();
        let row = d.rows.iter().find(|r| r.record_bytes == CLAIM_RECORD_BYTES);
        let Some((row, kernel)) = row.and_then(|r| Some((r, r.kernel_ns?))) else {
            return Verdict {
                holds: None,
                measured: format!(
                    "no kernel packet pipe to compare with: {}",
                    d.kernel_unavailable.as_deref().unwrap_or("not measured")
                ),
                note,
            };
        };
        let ratio = row.portable_ns / kernel;
        Verdict {
            holds: Some(ratio <= MAX_PIPE_OVER_KERNEL),
            measured: format!(
                "{}-byte record: portable pipe {:.0} ns, kernel pipe {kernel:.0} ns per record \
                 ({ratio:.2}x, target <= {MAX_PIPE_OVER_KERNEL})",
                row.record_bytes, row.portable_ns
            ),
            note,
        }
    }

    fn report(&self, d: &PipeData, _: &Verdict, r: &mut Report) {
        r.config("records", d.records)
            .config("record_bytes", CLAIM_RECORD_BYTES)
            .config("threshold.max_pipe_over_kernel", MAX_PIPE_OVER_KERNEL);
        let mut t = Table::new(
            "Write + read of one packet",
            &[
                "record bytes",
                "variant",
                "ns per operation",
                "time / kernel pipe2(O_DIRECT)",
            ],
        );
        for row in &d.rows {
            let over = |ns: f64| row.kernel_ns.map(|k| ns / k);
            t.row(cells![
                row.record_bytes,
                "klab portable packet pipe",
                row.portable_ns,
                over(row.portable_ns)
            ]);
            if let Some(k) = row.kernel_ns {
                t.row(cells![row.record_bytes, "kernel pipe2(O_DIRECT)", k, 1.0]);
            }
            t.row(cells![
                row.record_bytes,
                "std sync_channel<Vec<u8>>",
                row.channel_ns,
                over(row.channel_ns)
            ]);
        }
        r.table(t);
        let mut notes = vec![SHARED_NOTE.to_owned()];
        if let Some(why) = &d.kernel_unavailable {
            notes.push(format!("kernel packet pipe unavailable: {why}"));
        }
        r.host = Host::measured(notes);
    }
}

/// `klab bench active-refs`.
pub struct ActiveRefsBench;

/// The claim holds when an active reference takes at most this many times
/// an `RwLock::try_read`: the counter plus one read lock, the counter no
/// dearer than the lock.
pub const MAX_ACTIVE_OVER_RWSEM: f64 = 2.0;

/// What `active-refs` measured, ns per take-and-drop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefsData {
    /// Operations per round.
    pub operations: u64,
    /// `Revocable::try_get`.
    pub try_get_ns: f64,
    /// `RwLock::try_read` (the 2.6.22 rwsem).
    pub try_read_ns: f64,
    /// `Arc::clone`.
    pub arc_clone_ns: f64,
}

impl Experiment for ActiveRefsBench {
    type Data = RefsData;

    const ID: Identity = Identity {
        name: "active-refs",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "The counter that replaced the 2.6.22 rwsem costs no more than the rwsem did: one \
                sysfs operation's active reference (take and drop) at most twice an \
                RwLock::try_read; a plain Arc clone beside them",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<RefsData, ExperimentError> {
        let operations = ctx.size(10_000_000u64, 1_000_000);
        let rev = Revocable::new(42u64);
        let rw = RwLock::new(Some(42u64));
        let arc = Arc::new(42u64);
        let t = interleaved(
            operations,
            &mut [
                &mut || {
                    let _ = black_box(black_box(&rev).try_get().map(|g| *g));
                },
                &mut || {
                    let _ = black_box(black_box(&rw).try_read().map(|g| *g));
                },
                &mut || {
                    let _ = black_box(*Arc::clone(black_box(&arc)));
                },
            ],
        );
        Ok(RefsData {
            operations,
            try_get_ns: t[0],
            try_read_ns: t[1],
            arc_clone_ns: t[2],
        })
    }

    fn judge(&self, d: &RefsData) -> Verdict {
        let ratio = d.try_get_ns / d.try_read_ns;
        Verdict {
            holds: Some(ratio <= MAX_ACTIVE_OVER_RWSEM),
            measured: format!(
                "try_get {:.1} ns = the counter ({:.1} ns) + a slot read lock; RwLock::try_read \
                 {:.1} ns: {ratio:.2}x (target <= {MAX_ACTIVE_OVER_RWSEM}); Arc::clone {:.1} ns",
                d.try_get_ns,
                d.try_get_ns - d.try_read_ns,
                d.try_read_ns,
                d.arc_clone_ns
            ),
            note: "An active reference is kernfs's counter (atomic_inc_unless_negative, \
                   atomic_dec) plus, in klab, a read lock on the slot that holds the object."
                .to_owned(),
        }
    }

    fn report(&self, d: &RefsData, _: &Verdict, r: &mut Report) {
        r.config("operations", d.operations)
            .config("threshold.max_active_over_rwsem", MAX_ACTIVE_OVER_RWSEM);
        let base = d.try_read_ns;
        let mut t = Table::new(
            "Take and drop one reference",
            &[
                "variant",
                "ns per operation",
                "time / RwLock::try_read (2.6.22 rwsem)",
            ],
        );
        for (name, ns) in [
            ("klab Revocable::try_get", d.try_get_ns),
            ("RwLock::try_read (2.6.22 rwsem)", d.try_read_ns),
            ("Arc::clone", d.arc_clone_ns),
        ] {
            t.row(cells![name, ns, ns / base]);
        }
        r.table(t);
        r.host = Host::measured(vec![SHARED_NOTE.to_owned()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run as _;
    use klab_lab::experiment::Inputs;

    #[test]
    fn benches_report_one_row_per_variant() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let p = PacketPipeBench.run(&ctx).unwrap();
        // Two or three variants per record size.
        assert!(p.tables[0].rows.len() >= 2 * RECORD_BYTES.len());
        assert!(!p.host.deterministic);
        let a = ActiveRefsBench.run(&ctx).unwrap();
        assert_eq!(a.tables[0].rows.len(), 3);
        assert!(a.verdict.holds.is_some());
    }

    fn pipes(portable_ns: f64, kernel_ns: Option<f64>) -> PipeData {
        PipeData {
            records: 10,
            rows: vec![PipeRow {
                record_bytes: CLAIM_RECORD_BYTES,
                portable_ns,
                kernel_ns,
                channel_ns: 50.0,
            }],
            kernel_unavailable: kernel_ns.is_none().then(|| "EINVAL".to_owned()),
        }
    }

    #[test]
    fn a_pipe_slower_than_the_kernels_fails() {
        let v = PacketPipeBench.judge(&pipes(900.0, Some(600.0)));
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert!(v.measured.contains("1.50x"), "{}", v.measured);
        assert_eq!(
            PacketPipeBench.judge(&pipes(150.0, Some(600.0))).holds,
            Some(true)
        );
        // Without the kernel's pipe there is nothing to compare.
        let v = PacketPipeBench.judge(&pipes(150.0, None));
        assert_eq!(v.holds, None);
        assert!(v.measured.contains("EINVAL"), "{}", v.measured);
    }

    fn refs(try_get_ns: f64, try_read_ns: f64) -> RefsData {
        RefsData {
            operations: 10,
            try_get_ns,
            try_read_ns,
            arc_clone_ns: 3.0,
        }
    }

    #[test]
    fn a_counter_dearer_than_the_rwsem_fails() {
        // try_get 25 ns = counter 15 ns + lock 10 ns: the counter costs more.
        let v = ActiveRefsBench.judge(&refs(25.0, 10.0));
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert!(
            v.measured.contains("the counter (15.0 ns)"),
            "{}",
            v.measured
        );
        assert_eq!(ActiveRefsBench.judge(&refs(18.0, 10.0)).holds, Some(true));
    }
}
