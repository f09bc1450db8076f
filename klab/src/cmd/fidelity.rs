//! `klab fidelity`: the same workload on the host kernel and in the model,
//! compared. Thin: flags to options, the experiment's `run`, the reports.

use klab_experiments::fidelity::{self, Options};
use klab_experiments::output::{self, write_reports};
use klab_experiments::render;
use klab_experiments::report::{FORMAT_VERSION, ReportFile};

use crate::flags::FidelityArgs;
use crate::messages;
use crate::progress::Bar;

pub(crate) fn run(args: &FidelityArgs) -> anyhow::Result<u8> {
    let mut o = Options::new(args.seed, args.quick);
    if let Some(limit) = args.limit {
        o.limit_bytes = limit;
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
    let file = ReportFile {
        klab_version: env!("CARGO_PKG_VERSION").to_owned(),
        format: FORMAT_VERSION,
        reports: vec![report],
    };
    let written = write_reports(&args.out, &file)?;
    let json_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    match args.json.as_deref() {
        Some(_) if json_stdout => messages::out(&render::json(&file)),
        Some(p) => output::write_atomic(p, &render::json(&file))?,
        None => {}
    }
    if !json_stdout {
        messages::out(&render::text(&file.reports[0]));
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        messages::out(&format!("\nreports: {}\n", names.join(", ")));
    }
    Ok(0)
}
