//! `klab`: the command-line program. Thin: parse the flags, call a library,
//! print. Exit status 0 on success, 1 when a command ran and found
//! differences, 2 on errors.
#![forbid(unsafe_code)]
// Thin means short: no function over 120 lines (`clippy.toml`).
#![warn(clippy::too_many_lines)]

mod cmd;
mod flags;
mod messages;
mod progress;

use std::process::ExitCode;

use clap::Parser as _;

/// Exit statuses.
pub(crate) const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let result = match cli.command {
        flags::Command::List(args) => cmd::list::run(&args),
        flags::Command::Run(args) => cmd::run::run(&args),
        flags::Command::Resume(args) => cmd::run::resume(&args),
        flags::Command::Bench(args) => cmd::run::bench(&args),
        flags::Command::Replay(args) => cmd::replay::run(&args),
        flags::Command::Lro(args) => cmd::lro::run(&args),
        flags::Command::TcpRepair(args) => cmd::tcp_repair::run(&args),
        flags::Command::Devstats(args) => cmd::devstats::run(&args),
        flags::Command::Archmerge(args) => cmd::archmerge::run(&args),
        flags::Command::Fidelity(args) => cmd::fidelity::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            messages::error(format_args!("{e:#}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
