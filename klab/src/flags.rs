//! Every command-line flag, in one place, with its documentation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// See the Linux kernel's mechanisms work, and measure them.
///
/// klab builds the mechanisms described in LWN's kernel pages (the radix
/// tree, SLUB, workqueues, the page cache, ...) and turns each claim of a
/// page into an experiment.
#[derive(Debug, Parser)]
#[command(name = "klab", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List every experiment: its name, the seed page it comes from, its claim.
    List(ListArgs),
    /// Run experiments (all of them by default) and write the reports.
    Run(RunArgs),
    /// Time klab's mechanisms against their peers (std collections, the
    /// system allocator, rayon, ...) in one process and report the ratios.
    /// Timings vary between runs; `klab run` stays reproducible.
    Bench(BenchArgs),
    /// Development statistics of a git repository, counted as LWN's "who
    /// wrote this kernel" articles count them: non-merge changesets,
    /// developers, lines added and removed, employers, non-author signoffs.
    Devstats(DevstatsArgs),
    /// Merge two architecture source trees into one, as i386 and x86_64
    /// became arch/x86: identical files kept once, differing files split
    /// into NAME_32/NAME_64, a build manifest per architecture.
    Archmerge(ArchmergeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print the names only, one per line.
    #[arg(long)]
    pub(crate) names: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Experiments to run, by name; all of them when none is given.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,

    /// Directory for report.json and report.html (created if missing).
    #[arg(long, value_name = "DIR", default_value = "klab-report")]
    pub(crate) out: PathBuf,

    /// Seed for every random choice: the same seed gives the same numbers.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,

    /// Small sizes (for CI): every table and plot, in seconds.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the terminal report.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// A cache trace to run on, for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,

    /// A packet capture (pcap or pcapng), for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,

    /// A scenario file, for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: Option<PathBuf>,

    /// A git repository or source tree, for experiments that take one.
    #[arg(long, value_name = "PATH")]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Benchmarks to run, by name; all of them when none is given.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,

    /// Directory for report.json and report.html (created if missing).
    #[arg(long, value_name = "DIR", default_value = "klab-bench")]
    pub(crate) out: PathBuf,

    /// Seed for the generated keys and workloads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,

    /// Small sizes and few repetitions: a smoke test, not a measurement.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the terminal report.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// List the benchmarks instead of running them.
    #[arg(long)]
    pub(crate) list: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DevstatsArgs {
    /// The git repository (a work tree or a bare repository).
    #[arg(value_name = "REPO")]
    pub(crate) repo: PathBuf,

    /// A revision or range, as git rev-list takes it: `v2.6.30..v2.6.31`,
    /// `A...B`, `REV`, `REV^!`, or several separated by spaces. HEAD when
    /// omitted.
    #[arg(value_name = "RANGE")]
    pub(crate) range: Option<String>,

    /// Only commits committed at or after DATE (yyyy-mm-dd is midnight UTC;
    /// ISO 8601, RFC 2822 and @SECONDS are accepted).
    #[arg(long, value_name = "DATE")]
    pub(crate) since: Option<String>,

    /// Only commits committed at or before DATE.
    #[arg(long, value_name = "DATE")]
    pub(crate) until: Option<String>,

    /// Rows per table in the terminal (JSON and CSV hold every row).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) top: usize,

    /// Employer map in gitdm's EmailMap format: `ADDRESS-OR-DOMAIN
    /// EMPLOYER [< yyyy-mm-dd]` per line. Without it every employer is
    /// "(Unknown)".
    #[arg(long, value_name = "FILE")]
    pub(crate) employers: Option<PathBuf>,

    /// Also write the report as JSON to FILE; `-` writes it to standard
    /// output instead of the tables.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Also write one CSV file per table into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) csv: Option<PathBuf>,

    /// Threads for diffing commits (default: all available cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct ArchmergeArgs {
    /// The 32-bit tree (arch/i386).
    #[arg(value_name = "TREE_32")]
    pub(crate) tree_32: PathBuf,

    /// The 64-bit tree (arch/x86_64).
    #[arg(value_name = "TREE_64")]
    pub(crate) tree_64: PathBuf,

    /// The merged tree to create; it must not exist.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub(crate) out: PathBuf,

    /// After writing, read the inputs and the output back and prove that
    /// each architecture's build manifest names exactly the bytes it built
    /// before the merge.
    #[arg(long)]
    pub(crate) verify: bool,

    /// Rows of the janitor report in the terminal (the full report is
    /// written into OUT).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) top: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn devstats_takes_a_repository_and_an_optional_range() {
        let cli =
            Cli::try_parse_from(["klab", "devstats", "repo", "v1..v2", "--top", "5"]).unwrap();
        let Command::Devstats(args) = cli.command else {
            panic!("not devstats")
        };
        assert_eq!(args.range.as_deref(), Some("v1..v2"));
        assert_eq!(args.top, 5);
        let cli = Cli::try_parse_from(["klab", "devstats", "repo"]).unwrap();
        let Command::Devstats(args) = cli.command else {
            panic!("not devstats")
        };
        assert!(args.range.is_none() && args.employers.is_none());
    }

    #[test]
    fn archmerge_needs_an_output() {
        assert!(Cli::try_parse_from(["klab", "archmerge", "a", "b"]).is_err());
        let cli =
            Cli::try_parse_from(["klab", "archmerge", "a", "b", "-o", "c", "--verify"]).unwrap();
        let Command::Archmerge(args) = cli.command else {
            panic!("not archmerge")
        };
        assert!(args.verify);
    }

    #[test]
    fn run_defaults() {
        let cli = Cli::try_parse_from(["klab", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.out, PathBuf::from("klab-report"));
        assert_eq!(args.seed, 1);
        assert!(!args.quick && args.names.is_empty() && args.json.is_none());
    }
}
