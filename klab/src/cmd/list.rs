//! `klab list`: every experiment, its seed page and its claim.

use klab_experiments::registry;

use crate::flags::ListArgs;
use crate::messages;

pub(crate) fn run(args: &ListArgs) -> anyhow::Result<u8> {
    let all = registry::all();
    let mut out = String::new();
    if args.names {
        for e in all {
            out.push_str(e.name());
            out.push('\n');
        }
    } else {
        let width = all.iter().map(|e| e.name().len()).max().unwrap_or(0);
        for e in all {
            out.push_str(&format!(
                "{:<width$}  {}  {}\n",
                e.name(),
                e.seed_page(),
                e.claim()
            ));
        }
    }
    messages::out(&out);
    Ok(0)
}
