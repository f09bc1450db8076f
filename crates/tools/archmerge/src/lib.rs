//! Merge two architecture source trees into one, the way i386 and x86_64
//! became arch/x86 in 2.6.24 (seed 000, "i386 and x86_64: back
//! together?"; REFERENCE §15).
//!
//! ```text
//!  TREE_32 ─┐ scan.rs                plan.rs (pure)                 apply.rs
//!           ├──────▶ Tree, Tree ─────▶ Plan: items, manifests, ───▶ temp dir ─rename─▶ OUT
//!  TREE_64 ─┘  files, symlinks         clashes, janitor pairs       (never overwrites)
//!                                                                   verify(): re-read all,
//!                                                                   prove each arch's bytes
//! ```
//!
//! The page's promise was that "it will be possible to build the exact same
//! kernel image from the source tree before and after the change": files
//! identical in both trees are kept once, files that differ become
//! `NAME_32.EXT` and `NAME_64.EXT`, files in one tree keep their name, and
//! a build manifest per architecture says which files it builds.
//! [`apply::verify`] checks that promise on disk. The janitor report
//! ([`plan::PairReport`]) measures what the page leaves to "an army of code
//! janitors": how much each `_32`/`_64` pair still has in common.
//!
//! Real work: real directories in, a real directory out. [`synth`]
//! generates a deterministic pair of trees with every case.
#![forbid(unsafe_code)]

pub mod apply;
pub mod error;
pub mod manifest;
pub mod plan;
pub mod report;
pub mod scan;
pub mod synth;

use std::path::Path;

pub use apply::{Verification, apply, verify};
pub use error::{ArchmergeError, ManifestError};
pub use manifest::{Arch, Manifest};
pub use plan::{Plan, plan};
pub use scan::{Content, Tree};

/// Reads both trees, plans, and writes the merged tree to `out`.
pub fn merge(tree_32: &Path, tree_64: &Path, out: &Path) -> Result<Plan, ArchmergeError> {
    if out.symlink_metadata().is_ok() {
        return Err(ArchmergeError::OutputExists(out.to_owned()));
    }
    let t32 = Tree::read(tree_32)?;
    let t64 = Tree::read(tree_64)?;
    apply::check_reserved(&t32)?;
    apply::check_reserved(&t64)?;
    let p = plan(&t32, &t64);
    apply(
        &p,
        &t32,
        &t64,
        out,
        &report::text(&p, &t32, &t64, usize::MAX),
        &report::janitor_tsv(&p),
    )?;
    Ok(p)
}
