//! `klab archmerge`: merge two architecture trees, and prove the merge.

use anyhow::Context as _;
use klab_archmerge::{Tree, report};

use crate::flags::ArchmergeArgs;
use crate::messages;

/// Exit status when `--verify` finds a difference.
const EXIT_DIFFERENT: u8 = 1;

pub(crate) fn run(args: &ArchmergeArgs) -> anyhow::Result<u8> {
    let plan = klab_archmerge::merge(&args.tree_32, &args.tree_64, &args.out)
        .with_context(|| format!("archmerge into {}", args.out.display()))?;
    let t32 = Tree::read(&args.tree_32)?;
    let t64 = Tree::read(&args.tree_64)?;
    messages::out(&report::text(&plan, &t32, &t64, args.top));
    messages::out(&format!(
        "wrote {} (manifests and the full janitor report in {}/{})\n",
        args.out.display(),
        args.out.display(),
        klab_archmerge::apply::META_DIR
    ));
    if !args.verify {
        return Ok(0);
    }
    let v = klab_archmerge::verify(&args.tree_32, &args.tree_64, &args.out)?;
    for arch in klab_archmerge::Arch::BOTH {
        let c = &v.arch[arch.index()];
        messages::out(&format!(
            "verify {}: {} of {} files, {} bytes, built from the same bytes as before\n",
            arch.kernel_name(),
            c.matched,
            c.files,
            c.bytes
        ));
        for f in &c.failures {
            messages::error(format_args!("verify {}: {f}", arch.kernel_name()));
        }
    }
    for s in &v.strays {
        messages::error(format_args!(
            "verify: {s} is in the merged tree but in no manifest"
        ));
    }
    if v.ok() {
        messages::out(
            "verified: each architecture builds exactly the bytes it built before the merge\n",
        );
        Ok(0)
    } else {
        Ok(EXIT_DIFFERENT)
    }
}
