//! `klab list`: every experiment, its seed page and its claim.

use klab_lab::Run;

use crate::flags::ListArgs;
use crate::messages;

pub(crate) fn run(args: &ListArgs) -> anyhow::Result<u8> {
    print(klab_experiments::all(), args.names);
    Ok(0)
}

/// Prints a list of experiments: names only, or name, seed page and claim.
pub(crate) fn print(list: &[&'static dyn Run], names_only: bool) {
    let mut out = String::new();
    let width = list.iter().map(|e| e.name().len()).max().unwrap_or(0);
    for e in list {
        if names_only {
            out.push_str(e.name());
        } else {
            out.push_str(&format!(
                "{:<width$}  {}  {}",
                e.name(),
                e.seed_page(),
                e.claim()
            ));
        }
        out.push('\n');
    }
    messages::out(&out);
}
