//! `klab run`: run experiments and write the terminal, JSON and HTML
//! reports.

use anyhow::Context as _;
use klab_experiments::output::{self, write_reports};
use klab_experiments::registry::{self, Ctx, Experiment, Inputs};
use klab_experiments::render;
use klab_experiments::report::{FORMAT_VERSION, ReportFile};

use crate::flags::RunArgs;
use crate::progress::Bar;
use crate::{EXIT_ERROR, messages};

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let selected = select(&args.names)?;
    let inputs = Inputs {
        trace: args.trace.clone(),
        pcap: args.pcap.clone(),
        scenario: args.scenario.clone(),
        repo: args.repo.clone(),
    };
    check_inputs(&selected, &inputs)?;
    let json_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let bar = Bar::new();
    let ctx = Ctx {
        seed: args.seed,
        quick: args.quick,
        inputs: &inputs,
        progress: &bar,
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for e in &selected {
        match e.run(&ctx) {
            Ok(report) => {
                if !json_stdout {
                    messages::out(&render::text(&report));
                    messages::out("\n");
                }
                reports.push(report);
            }
            Err(err) => {
                messages::error(format_args!("{}: {err}", e.name()));
                failed = true;
            }
        }
    }
    let file = ReportFile {
        klab_version: env!("CARGO_PKG_VERSION").to_owned(),
        format: FORMAT_VERSION,
        reports,
    };
    let written = write_reports(&args.out, &file)?;
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => messages::out(&render::json(&file)),
        Some(p) => output::write_atomic(p, &render::json(&file))?,
        None => {}
    }
    if !json_stdout {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        messages::out(&format!("reports: {}\n", names.join(", ")));
    }
    Ok(if failed { EXIT_ERROR } else { 0 })
}

/// The experiments named, in registry order, or all of them. An unknown
/// name is an error that lists the known ones.
fn select(names: &[String]) -> anyhow::Result<Vec<&'static dyn Experiment>> {
    let all = registry::all();
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| registry::find(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = all.iter().map(|e| e.name()).collect();
        anyhow::bail!(
            "unknown experiment{} {}; known experiments: {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            known.join(", ")
        );
    }
    Ok(all
        .iter()
        .copied()
        .filter(|e| names.iter().any(|n| n == e.name()))
        .collect())
}

/// Every input given must be taken by at least one selected experiment, and
/// must exist.
fn check_inputs(selected: &[&'static dyn Experiment], inputs: &Inputs) -> anyhow::Result<()> {
    for kind in inputs.given() {
        if !selected.iter().any(|e| e.inputs().contains(&kind)) {
            let takers: Vec<&str> = registry::all()
                .iter()
                .filter(|e| e.inputs().contains(&kind))
                .map(|e| e.name())
                .collect();
            anyhow::bail!(
                "{} is not used by the selected experiments; experiments that take it: {}",
                kind.flag(),
                if takers.is_empty() {
                    "none".to_owned()
                } else {
                    takers.join(", ")
                }
            );
        }
        let path = inputs.get(kind).expect("given");
        std::fs::metadata(path).with_context(|| format!("{} {}", kind.flag(), path.display()))?;
    }
    Ok(())
}
