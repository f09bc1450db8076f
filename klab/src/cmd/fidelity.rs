//! `klab fidelity`: the same workload on the host kernel and in the model,
//! compared. Thin: flags to options, the experiment's `run`, the reports.

use klab_experiments::mm::fidelity::{self, Options};
use klab_lab::render;

use crate::flags::FidelityArgs;
use crate::messages;
use crate::progress::Bar;

pub(crate) fn run(args: &FidelityArgs) -> anyhow::Result<u8> {
    let mut o = Options::new(args.seed, args.quick);
    if let Some(limit) = args.limit {
        o.limits = vec![limit];
    }
    if !args.rules.is_empty() {
        o.rules = args.rules.clone();
        o.rules.dedup();
    }
    o.trace = args.trace.clone();
    o.builtin = !args.trace_only;
    if let Some(n) = args.trace_reads {
        o.trace_accesses = n;
    }
    o.host = !args.model_only;
    if args.mmap {
        o.touch = klab_fidelity::Touch::Mapped;
    }
    if args.sparse {
        o.fill = klab_fidelity::Fill::Sparse;
    }
    o.dir = args.dir.clone();
    let report = fidelity::run(&o, &Bar::new())?;
    if !report.host.real && o.host {
        for n in &report.host.notes {
            if n.starts_with("host side skipped") {
                messages::error(format_args!("{n}"));
            }
        }
    }
    let json_stdout = super::json_to_stdout(args.json.as_deref());
    let text = (!json_stdout).then(|| render::text(&report));
    let written = super::write_report_files(vec![report], &args.out, args.json.as_deref())?;
    if let Some(text) = text {
        messages::out(&text);
        messages::out(&format!("\n{}", super::reports_line(&written)));
    }
    Ok(0)
}
