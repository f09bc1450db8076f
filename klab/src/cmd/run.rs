//! `klab run` and `klab bench`: run experiments (or benchmarks) and write
//! the terminal, JSON and HTML reports.

use std::path::Path;

use anyhow::Context as _;
use klab_lab::output;
use klab_lab::render;
use klab_lab::{Ctx, Inputs, Run};

use crate::flags::{BenchArgs, ReportFlags, ResumeArgs, RunArgs};
use crate::progress::Bar;
use crate::{EXIT_ERROR, messages};

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let selected = select(klab_experiments::all(), "experiment", &args.names)?;
    let inputs = Inputs {
        trace: args.trace.clone(),
        pcap: args.pcap.clone(),
        scenario: args.scenario.clone(),
        repo: args.repo.clone(),
        range: args.range.clone(),
        employers: args.employers.clone(),
        suite: None,
    };
    check_inputs(&selected, &inputs)?;
    if let (Some(at), Some(image)) = (args.hibernate_at, args.image.as_deref()) {
        return hibernate(&selected, &inputs, args, at, image);
    }
    execute(&selected, &args.report, &inputs)
}

pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<u8> {
    if args.list {
        super::list::print(klab_experiments::benches(), false);
        return Ok(0);
    }
    let selected = select(klab_experiments::benches(), "benchmark", &args.names)?;
    if let Some(dir) = &args.suite {
        if !selected.iter().any(|e| e.name() == "slub") {
            anyhow::bail!(
                "--suite is read by the slub benchmark only: run `klab bench slub --suite DIR`"
            );
        }
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: not a directory: expected the suite's built out/bench",
                dir.display()
            );
        }
    }
    execute(
        &selected,
        &args.report,
        &Inputs {
            suite: args.suite.clone(),
            ..Inputs::default()
        },
    )
}

/// `klab run NAME --hibernate-at T --image FILE`: runs one model
/// experiment to T and writes its image (temporary file, then rename).
fn hibernate(
    selected: &[&'static dyn Run],
    inputs: &Inputs,
    args: &RunArgs,
    at: u64,
    image: &Path,
) -> anyhow::Result<u8> {
    let [e] = selected else {
        anyhow::bail!(
            "--hibernate-at stops one experiment; {} selected",
            selected.len()
        );
    };
    if let Err(why) = e.hibernates() {
        anyhow::bail!("{} cannot hibernate: {why}", e.name());
    }
    for (given, flag) in [(&inputs.trace, "--trace"), (&inputs.pcap, "--pcap")] {
        if given.is_some() {
            anyhow::bail!(
                "--hibernate-at covers the built-in workloads and --scenario; {flag} is not carried in an image"
            );
        }
    }
    let bar = Bar::new();
    let ctx = Ctx {
        seed: args.report.seed,
        quick: args.report.quick,
        inputs,
        progress: &bar,
        driver: None,
    };
    let bytes = klab_lab::hibernate::hibernate_at(*e, &ctx, at)
        .map_err(|err| anyhow::anyhow!("{}: {err}", e.name()))?;
    output::write_atomic_bytes(image, &bytes)?;
    let (header, _) = klab_lab::hibernate::Driver::resume(&bytes)
        .map_err(|err| anyhow::anyhow!("{}: {err}", image.display()))?;
    messages::out(&format!(
        "{}: hibernated at virtual time {} (asked {at}) after {} finished jobs; image {} ({} bytes)\n",
        e.name(),
        header.stopped_at,
        header.done.len(),
        image.display(),
        bytes.len()
    ));
    Ok(0)
}

/// `klab resume FILE`: continues a hibernated experiment and writes the
/// reports.
pub(crate) fn resume(args: &ResumeArgs) -> anyhow::Result<u8> {
    let file = std::fs::File::open(&args.image)
        .with_context(|| format!("cannot read {}", args.image.display()))?;
    let bytes = klab_lab::hibernate::read_image(file)
        .map_err(|err| anyhow::anyhow!("{}: {err}", args.image.display()))?;
    let json_stdout = super::json_to_stdout(args.json.as_deref());
    let bar = Bar::new();
    let r = klab_lab::hibernate::resume(&bytes, &klab_experiments::find, &bar, false)
        .map_err(|err| anyhow::anyhow!("{}: {err}", args.image.display()))?;
    if !json_stdout {
        messages::out(&format!(
            "{}: resumed at virtual time {}, ran to {}\n",
            r.header.experiment,
            r.header.stopped_at,
            r.driver.clock()
        ));
        messages::out(&render::text(&r.report));
        messages::out("\n");
    }
    finish(vec![r.report], &args.out, args.json.as_deref(), json_stdout)?;
    Ok(0)
}

/// Runs each experiment, printing its report as it finishes, then writes
/// the report files. An experiment that fails is reported and the others
/// still run; the exit status is then 2, the failures are listed at the
/// end, and the report files hold the others' reports. When every
/// experiment fails, no report file is written.
fn execute(
    selected: &[&'static dyn Run],
    flags: &ReportFlags,
    inputs: &Inputs,
) -> anyhow::Result<u8> {
    let json = flags.json.as_deref();
    let json_stdout = super::json_to_stdout(json);
    let bar = Bar::new();
    let ctx = Ctx {
        seed: flags.seed,
        quick: flags.quick,
        inputs,
        progress: &bar,
        driver: None,
    };
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for e in selected {
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
                failed.push(e.name());
            }
        }
    }
    if failed.is_empty() {
        finish(reports, &flags.out, json, json_stdout)?;
        return Ok(0);
    }
    let what = if selected.len() == 1 {
        "experiment"
    } else {
        "experiments"
    };
    if reports.is_empty() {
        messages::error(format_args!(
            "{} of {} {what} failed ({}); no report written",
            failed.len(),
            selected.len(),
            failed.join(", ")
        ));
    } else {
        finish(reports, &flags.out, json, json_stdout)?;
        messages::error(format_args!(
            "{} of {} {what} failed ({}); the reports hold the others",
            failed.len(),
            selected.len(),
            failed.join(", ")
        ));
    }
    Ok(EXIT_ERROR)
}

/// Writes report.json and report.html, and the JSON where asked.
fn finish(
    reports: Vec<klab_lab::Report>,
    out: &Path,
    json: Option<&Path>,
    json_stdout: bool,
) -> anyhow::Result<()> {
    let written = super::write_report_files(reports, out, json)?;
    if !json_stdout {
        messages::out(&super::reports_line(&written));
    }
    Ok(())
}

/// The experiments named, in registry order, or all of them. An unknown
/// name is an error that lists the known ones.
fn select(
    list: &'static [&'static dyn Run],
    what: &str,
    names: &[String],
) -> anyhow::Result<Vec<&'static dyn Run>> {
    if names.is_empty() {
        return Ok(list.to_vec());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| klab_experiments::find_in(list, n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = list.iter().map(|e| e.name()).collect();
        anyhow::bail!(
            "unknown {what}{} {}; known: {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(list
        .iter()
        .copied()
        .filter(|e| names.iter().any(|n| n == e.name()))
        .collect())
}

/// Every input given must be taken by at least one selected experiment, and
/// must exist.
fn check_inputs(selected: &[&'static dyn Run], inputs: &Inputs) -> anyhow::Result<()> {
    for kind in inputs.given() {
        if !selected.iter().any(|e| e.inputs().contains(&kind)) {
            let takers: Vec<&str> = klab_experiments::all()
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
        if let Some(path) = inputs.get(kind) {
            std::fs::metadata(path)
                .with_context(|| format!("{} {}", kind.flag(), path.display()))?;
        }
    }
    Ok(())
}
