//! The timed half of `paravirt`, shared with `klab bench paravirt`: the
//! binding forms of `klab_paravirt::timing`, a real trap to the
//! hypervisor, and the kernel path the per-call costs are weighed against.

use klab_paravirt::BackendKind;
use klab_paravirt::timing::{self, Form, FormTiming, Spread};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::ExperimentError;
use klab_lab::report::{Axis, Series, Table};

/// The largest share of a kernel path the paravirtual calls it makes may
/// add, natively, and still be "negligible overhead".
pub const NEGLIGIBLE_SHARE: f64 = 0.02;

/// Paravirtual calls on a minor anonymous fault, as the model's
/// `do_anonymous_page()` makes them: `set_pte_at()` and the LRU add under
/// `spin_lock_irqsave()` (`save_fl`, `irq_disable`, `restore_fl`): 4.
pub const ANON_FAULT_PV_CALLS: u64 = 4;

/// What a kernel path costs, to weigh the calls against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Yardstick {
    /// A minor page fault on this machine (first touch of anonymous
    /// memory), timed for real: the default.
    PageFault,
    /// The stand-in round itself (16 paravirtual operations on the model
    /// CPU and nothing else): a path that is all privileged operations.
    StandIn,
}

impl Yardstick {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Yardstick::PageFault => "a minor page fault on this machine",
            Yardstick::StandIn => "the 16-operation stand-in path itself",
        }
    }
}

/// What was timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Rounds of the kernel paths per repetition.
    pub rounds: u64,
    /// Interleaved repetitions.
    pub reps: usize,
    /// CPUID instructions per trap repetition.
    pub trap_calls: u64,
    /// The path the calls are weighed against.
    pub yardstick: Yardstick,
    /// Every binding form timed.
    pub forms: Vec<FormTiming>,
    /// Nanoseconds per CPUID, per repetition (`None`: no CPUID here).
    pub trap_ns: Option<Vec<f64>>,
    /// Nanoseconds per yardstick path, per repetition (empty: could not
    /// be timed).
    pub path_ns: Vec<f64>,
    /// Paravirtual calls that path makes.
    pub path_calls: u64,
    /// Why the path could not be timed, if it could not.
    pub path_error: Option<String>,
}

/// Times everything.
///
/// # Errors
/// None today; the signature leaves room for a host that refuses.
pub fn measure(
    rounds: u64,
    reps: usize,
    trap_calls: u64,
    yardstick: Yardstick,
) -> Result<Timings, ExperimentError> {
    let forms = timing::time_forms(rounds, reps);
    let trap_ns = timing::time_trap(trap_calls, reps);
    let (path_ns, path_calls, path_error) = match yardstick {
        Yardstick::PageFault => match timing::time_page_faults(reps.clamp(3, 9)) {
            Ok(v) => (v, ANON_FAULT_PV_CALLS, None),
            Err(e) => (Vec::new(), ANON_FAULT_PV_CALLS, Some(e.to_string())),
        },
        Yardstick::StandIn => {
            let inline = forms
                .iter()
                .find(|t| t.form == Form::Inline)
                .map(|t| t.ns_per_op.clone())
                .unwrap_or_default();
            let per_path = klab_paravirt::OPS_PER_ROUND as f64;
            (
                inline.iter().map(|ns| ns * per_path).collect(),
                klab_paravirt::OPS_PER_ROUND,
                None,
            )
        }
    };
    Ok(Timings {
        rounds,
        reps,
        trap_calls,
        yardstick,
        forms,
        trap_ns,
        path_ns,
        path_calls,
        path_error,
    })
}

impl Timings {
    /// The spread of a form.
    pub fn spread(&self, form: Form, backend: BackendKind) -> Option<Spread> {
        self.forms
            .iter()
            .find(|t| t.form == form && t.backend == backend)
            .map(FormTiming::spread)
    }

    /// Median ns per operation of a form (NaN if not timed).
    pub fn median(&self, form: Form, backend: BackendKind) -> f64 {
        self.spread(form, backend).map_or(f64::NAN, |s| s.median)
    }

    /// Median ns of the yardstick path (NaN if not timed).
    pub fn path_median(&self) -> f64 {
        if self.path_ns.is_empty() {
            f64::NAN
        } else {
            Spread::of(&self.path_ns).median
        }
    }

    /// The share of the yardstick path a native form's extra cost over
    /// inline adds, for the path's calls.
    pub fn native_share(&self, form: Form) -> f64 {
        let extra =
            self.median(form, BackendKind::Native) - self.median(Form::Inline, BackendKind::Native);
        self.path_calls as f64 * extra / self.path_median()
    }
}

/// The verdict on the timings: `(holds, bound share, table share)`.
/// `None` when the path could not be timed.
pub fn judge(t: &Timings) -> (Option<bool>, f64, f64) {
    let bound = t.native_share(Form::BoundCall);
    let table = t.native_share(Form::Table);
    if !bound.is_finite() {
        return (None, bound, table);
    }
    (Some(bound <= NEGLIGIBLE_SHARE), bound, table)
}

fn spread_cells(s: Spread) -> Vec<klab_lab::report::Cell> {
    cells![s.median, s.min, s.p90, s.max]
}

/// The timing table: every form, the untimed one, and the trap.
pub fn table(t: &Timings) -> Table {
    let base = t.median(Form::Inline, BackendKind::Native);
    let mut tab = Table::new(
        "cost per privileged operation on this machine (ns; interleaved repetitions)",
        &[
            "form",
            "backend",
            "median",
            "min",
            "p90",
            "max",
            "extra over inline native (median)",
            "timed",
        ],
    );
    let mut row = |form: Form, backend: &str, s: Option<Spread>, timed: &str| {
        let mut c = cells![form.name(), backend];
        match s {
            Some(s) => {
                c.extend(spread_cells(s));
                c.push((s.median - base).into());
            }
            None => c.extend(cells![
                None::<f64>,
                None::<f64>,
                None::<f64>,
                None::<f64>,
                None::<f64>
            ]),
        }
        c.push(timed.into());
        tab.row(c);
    };
    for f in &t.forms {
        row(f.form, f.backend.name(), Some(f.spread()), "yes");
        if f.form == Form::Inline {
            row(
                Form::BoundInline,
                "native",
                None,
                "no: the same instructions as inline (native_patch copies them into the site)",
            );
        }
    }
    match &t.trap_ns {
        Some(v) => row(
            Form::Trap,
            "the hypervisor found",
            Some(Spread::of(v)),
            "yes",
        ),
        None => row(
            Form::Trap,
            "none",
            None,
            "no: no CPUID on this architecture",
        ),
    }
    tab
}

/// The yardstick table: the path, its cost, its calls, and the share each
/// native form adds.
pub fn yardstick_table(t: &Timings) -> Table {
    let mut tab = Table::new(
        "what the native calls add to a kernel path",
        &[
            "path",
            "median (ns)",
            "min (ns)",
            "p90 (ns)",
            "paravirtual calls on it",
            "share added, bound (direct call)",
            "share added, through pv_ops",
            "negligible at most",
        ],
    );
    let s = Spread::of(&t.path_ns);
    tab.row(cells![
        t.yardstick.name(),
        s.median,
        s.min,
        s.p90,
        t.path_calls,
        t.native_share(Form::BoundCall),
        t.native_share(Form::Table),
        NEGLIGIBLE_SHARE
    ]);
    tab
}

/// Nanoseconds per operation by form and backend, with the trap.
pub fn series(t: &Timings) -> Series {
    let mut s = Series::new(
        "nanoseconds per privileged operation, by binding and backend",
        Axis::linear("backend (0 native, 1 vmi, 2 xen)", ""),
        Axis::log("time", "ns"),
    );
    for form in [Form::Table, Form::BoundCall] {
        s.line(
            form.name(),
            BackendKind::ALL
                .iter()
                .enumerate()
                .map(|(i, &b)| [i as f64, t.median(form, b).max(1e-3)])
                .collect(),
        );
    }
    let base = t.median(Form::Inline, BackendKind::Native).max(1e-3);
    s.line("inline native", vec![[0.0, base], [2.0, base]]);
    if let Some(v) = &t.trap_ns {
        let m = Spread::of(v).median;
        s.line("CPUID trap", vec![[0.0, m], [2.0, m]]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(form: Form, backend: BackendKind, ns: f64) -> FormTiming {
        FormTiming {
            form,
            backend,
            ns_per_op: vec![ns; 3],
        }
    }

    /// Native: inline 1 ns, a direct call 3 ns, the table 4 ns per
    /// operation; a fault path of `path_ns` with 4 calls.
    pub(crate) fn timings(path_ns: f64, yardstick: Yardstick, calls: u64) -> Timings {
        Timings {
            rounds: 1,
            reps: 3,
            trap_calls: 1,
            yardstick,
            forms: vec![
                timed(Form::Inline, BackendKind::Native, 1.0),
                timed(Form::BoundCall, BackendKind::Native, 3.0),
                timed(Form::Table, BackendKind::Native, 4.0),
            ],
            trap_ns: Some(vec![7000.0; 3]),
            path_ns: vec![path_ns; 3],
            path_calls: calls,
            path_error: None,
        }
    }

    #[test]
    fn calls_on_a_page_fault_are_negligible() {
        // 4 calls x 2 ns extra = 8 ns of a 1000 ns fault: 0.8% <= 2%.
        let (holds, bound, table) = judge(&timings(1000.0, Yardstick::PageFault, 4));
        assert_eq!(holds, Some(true));
        assert!((bound - 0.008).abs() < 1e-12, "{bound}");
        assert!((table - 0.012).abs() < 1e-12, "{table}");
    }

    #[test]
    fn calls_on_a_path_of_calls_are_not() {
        // 16 calls x 2 ns extra on a 16 ns path: 200%.
        let (holds, bound, _) = judge(&timings(16.0, Yardstick::StandIn, 16));
        assert_eq!(holds, Some(false));
        assert!((bound - 2.0).abs() < 1e-12, "{bound}");
    }

    #[test]
    fn an_untimed_path_gives_no_verdict() {
        let mut t = timings(1000.0, Yardstick::PageFault, 4);
        t.path_ns.clear();
        assert_eq!(judge(&t).0, None);
    }
}
