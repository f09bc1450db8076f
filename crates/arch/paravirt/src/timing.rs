//! What the VMI page was about, timed on this machine.
//!
//! ```text
//!   form               what runs per operation                  kernel analogue
//!   trap               CPUID: the guest exits to the hypervisor  a privileged instruction
//!                      and back (VT-x and SVM always intercept   trapped and emulated (a
//!                      it under KVM)                             guest without paravirt)
//!   table              an indirect call through pv_ops           paravirt_ops before patching
//!   bound (call)       a direct call chosen at boot              VMI's CALL_REL into the ROM;
//!                                                                natively, the direct call
//!                                                                paravirt_patch_default() emits
//!   bound (inline)     the native instruction copied in place    native_patch(): cli, sti,
//!                                                                pushf; pop, ... in the site
//!   inline             the native instruction                    a kernel without paravirt
//! ```
//!
//! `bound (inline)` is the same code as `inline` by construction
//! ([`crate::Bound`]`<`[`crate::Native`]`>` inlines the native functions
//! [`crate::Direct`] inlines): it is listed, never timed, because timing it
//! would only time noise. The call forms run [`crate::kernel_paths`] (16
//! operations a round) on the model CPU; the trap runs the real
//! instruction. [`time_page_faults`] times a real kernel path of this
//! machine (a minor fault on anonymous memory), the yardstick that says
//! whether a per-call cost is negligible.
//!
//! Every form is timed in the same repetitions, interleaved, so load on the
//! machine falls on all of them alike; each repetition's nanoseconds per
//! operation are kept, and [`Spread`] summarises them.

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{BackendKind, Cpu, OPS_PER_ROUND, PvOpsTable, boot_bound_call, direct, through_table};

/// How an operation is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Form {
    /// The native instruction inline: no paravirt.
    Inline,
    /// Bound at boot by copying the native instruction into the call site:
    /// the same code as [`Form::Inline`], not timed.
    BoundInline,
    /// Bound at boot to a direct call.
    BoundCall,
    /// An indirect call through the table.
    Table,
    /// The instruction trapping to the hypervisor.
    Trap,
}

impl Form {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Form::Inline => "inline (no paravirt)",
            Form::BoundInline => "bound at boot, patched inline",
            Form::BoundCall => "bound at boot, direct call",
            Form::Table => "indirect call through pv_ops",
            Form::Trap => "trap to the hypervisor (CPUID exit)",
        }
    }
}

/// A summary of repeated measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Repetitions.
    pub n: usize,
    /// Fastest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Slowest.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples` (NaN-free; empty gives all zeros).
    pub fn of(samples: &[f64]) -> Spread {
        if samples.is_empty() {
            return Spread::default();
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |q: f64| s[(((s.len() as f64) * q).ceil() as usize).clamp(1, s.len()) - 1];
        Spread {
            n: s.len(),
            min: s[0],
            median: if s.len() % 2 == 1 {
                s[s.len() / 2]
            } else {
                (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
            },
            p90: rank(0.9),
            max: s[s.len() - 1],
        }
    }
}

/// One form and backend, timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormTiming {
    /// The form.
    pub form: Form,
    /// The backend bound.
    pub backend: BackendKind,
    /// Nanoseconds per operation, one per repetition.
    pub ns_per_op: Vec<f64>,
}

impl FormTiming {
    /// The spread of the repetitions.
    pub fn spread(&self) -> Spread {
        Spread::of(&self.ns_per_op)
    }
}

/// The forms timed, in report order: native inline, native bound as a
/// direct call, native through the table, then each hypervisor backend
/// bound (its ROM's functions: direct calls) and through the table.
pub fn configurations() -> Vec<(Form, BackendKind)> {
    let mut c = vec![
        (Form::Inline, BackendKind::Native),
        (Form::BoundCall, BackendKind::Native),
        (Form::Table, BackendKind::Native),
    ];
    for b in &BackendKind::ALL[1..] {
        c.push((Form::BoundCall, *b));
        c.push((Form::Table, *b));
    }
    c
}

/// Times every configuration: `reps` interleaved repetitions of `rounds`
/// rounds of [`crate::kernel_paths`].
pub fn time_forms(rounds: u64, reps: usize) -> Vec<FormTiming> {
    let configs = configurations();
    let tables: Vec<PvOpsTable> = BackendKind::ALL
        .iter()
        .map(|&b| black_box(PvOpsTable::bind(b)))
        .collect();
    let mut out: Vec<FormTiming> = configs
        .iter()
        .map(|&(form, backend)| FormTiming {
            form,
            backend,
            ns_per_op: Vec::with_capacity(reps),
        })
        .collect();
    let mut cpu = Cpu::new(512);
    let mut sink = 0u64;
    let ops = (rounds * OPS_PER_ROUND).max(1) as f64;
    for _ in 0..reps {
        for t in &mut out {
            let start = Instant::now();
            sink ^= match t.form {
                Form::Inline | Form::BoundInline => direct(&mut cpu, black_box(rounds)),
                Form::BoundCall => {
                    boot_bound_call(black_box(t.backend), &mut cpu, black_box(rounds))
                }
                Form::Table => {
                    let i = BackendKind::ALL
                        .iter()
                        .position(|&b| b == t.backend)
                        .unwrap_or(0);
                    through_table(black_box(&tables[i]), &mut cpu, black_box(rounds))
                }
                Form::Trap => 0,
            };
            t.ns_per_op.push(start.elapsed().as_nanos() as f64 / ops);
        }
    }
    black_box(sink);
    out
}

/// Times `calls` executions of CPUID leaf 0, `reps` times: nanoseconds per
/// instruction, one per repetition. `None` where there is no CPUID.
pub fn time_trap(calls: u64, reps: usize) -> Option<Vec<f64>> {
    crate::probe::cpuid(0)?;
    let mut out = Vec::with_capacity(reps);
    let mut sink = 0u32;
    for _ in 0..reps {
        let start = Instant::now();
        for _ in 0..calls {
            sink ^= crate::probe::cpuid(black_box(0)).map_or(0, |r| r.ebx);
        }
        out.push(start.elapsed().as_nanos() as f64 / calls.max(1) as f64);
    }
    black_box(sink);
    Some(out)
}

/// This thread's minor faults so far (`/proc/thread-self/stat`, field
/// 10).
fn minor_faults() -> std::io::Result<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat")?;
    let bad = || std::io::Error::other(format!("/proc/thread-self/stat: no minflt field in {s:?}"));
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. minflt is the 8th field after it.
    let rest = s.rsplit_once(')').ok_or_else(bad)?.1;
    rest.split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)
}

/// Mappings larger than glibc's largest dynamic mmap threshold (32 MiB on
/// 64-bit) always get fresh, untouched pages.
pub const FAULT_REGION_BYTES: usize = 64 << 20;

/// Times the first touch of every page of a fresh anonymous region
/// ([`FAULT_REGION_BYTES`]), `reps` times: nanoseconds per minor fault,
/// the faults counted by the kernel for this thread (so pages that were
/// not fresh do not count).
///
/// # Errors
/// `/proc/thread-self/stat` cannot be read, or no fault happened.
pub fn time_page_faults(reps: usize) -> std::io::Result<Vec<f64>> {
    (0..reps)
        .map(|_| touch_fresh_region().map(|(faults, ns)| ns / faults as f64))
        .collect()
}

/// Touches each page of a fresh [`FAULT_REGION_BYTES`] region once:
/// `(minor faults the kernel counted, nanoseconds)`.
///
/// # Errors
/// `/proc/thread-self/stat` cannot be read, or no fault happened.
pub fn touch_fresh_region() -> std::io::Result<(u64, f64)> {
    const PAGE: usize = 4096;
    let before = minor_faults()?;
    let start = Instant::now();
    let mut v = vec![0u8; FAULT_REGION_BYTES];
    for i in (0..FAULT_REGION_BYTES).step_by(PAGE) {
        v[i] = 1;
    }
    black_box(&v);
    let ns = start.elapsed().as_nanos() as f64;
    let faults = minor_faults()? - before;
    drop(v);
    if faults == 0 {
        return Err(std::io::Error::other(
            "no minor fault counted while touching a fresh region",
        ));
    }
    Ok((faults, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_nearest_ranks() {
        let s = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(
            (s.n, s.min, s.median, s.p90, s.max),
            (10, 1.0, 5.5, 9.0, 10.0)
        );
        let s = Spread::of(&[3.0]);
        assert_eq!((s.min, s.median, s.p90, s.max), (3.0, 3.0, 3.0, 3.0));
        assert_eq!(Spread::of(&[]), Spread::default());
    }

    #[test]
    fn every_configuration_gets_every_repetition() {
        let t = time_forms(10, 3);
        assert_eq!(t.len(), 3 + 2 * 2);
        assert!(
            t.iter()
                .all(|x| x.ns_per_op.len() == 3 && x.ns_per_op.iter().all(|v| *v >= 0.0))
        );
        assert!(
            !t.iter()
                .any(|x| x.form == Form::BoundInline || x.form == Form::Trap)
        );
    }

    #[test]
    fn every_page_of_a_fresh_region_faults() {
        // 64 MiB of 4 KiB pages: 16384 first touches, each a minor fault
        // (the allocator's own bookkeeping may add a few); with
        // transparent huge pages always on, one per 2 MiB instead.
        let (faults, ns) = touch_fresh_region().unwrap();
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| s.contains("[always]"));
        let expected = if thp {
            32..16_384 + 64
        } else {
            16_384..16_384 + 64
        };
        assert!(expected.contains(&faults), "{faults}");
        assert!(ns > 0.0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_trap_runs_cpuid() {
        let t = time_trap(10, 2).unwrap();
        assert_eq!(t.len(), 2);
    }
}
