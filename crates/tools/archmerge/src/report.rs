//! The merge report, for people (text) and for tools (TSV).

use crate::manifest::Arch;
use crate::plan::{ClashKind, Plan};
use crate::scan::{Tree, show};

/// The janitor table as TSV: one row per `_32`/`_64` pair, most work saved
/// first.
pub fn janitor_tsv(plan: &Plan) -> String {
    let mut out = String::from(
        "path\tout_32\tout_64\tlines_32\tlines_64\tcommon\tonly_32\tonly_64\thunks\tsimilarity_percent\tnot_text\n",
    );
    for r in &plan.pairs {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}\t{}\n",
            r.path.replace(['\t', '\n'], " "),
            r.out_32.replace(['\t', '\n'], " "),
            r.out_64.replace(['\t', '\n'], " "),
            r.lines_32,
            r.lines_64,
            r.common,
            r.only_32,
            r.only_64,
            r.hunks,
            r.similarity(),
            r.not_text
        ));
    }
    out
}

/// The report: counts, clashes, skipped entries, moved link targets, and
/// the top `top` janitor rows.
pub fn text(plan: &Plan, t32: &Tree, t64: &Tree, top: usize) -> String {
    let c = &plan.counts;
    let mut out = format!(
        "Merged {} files of {} and {} files of {} into {} files:\n  \
         {} identical (kept once), {} differing (split into _32/_64), {} only in {}, {} only in {}\n  \
         {} binary, {} symbolic links, {} name clashes resolved, {} entries skipped\n",
        t32.files.len(),
        Arch::X32.kernel_name(),
        t64.files.len(),
        Arch::X64.kernel_name(),
        plan.items.len(),
        c.common,
        c.split,
        c.only_32,
        Arch::X32.kernel_name(),
        c.only_64,
        Arch::X64.kernel_name(),
        c.binary,
        c.symlinks,
        c.clashes,
        c.skipped
    );
    for arch in Arch::BOTH {
        out.push_str(&format!(
            "  build manifest {}: {} files\n",
            arch.bits(),
            plan.manifests[arch.index()].entries.len()
        ));
    }
    if !plan.clashes.is_empty() {
        out.push_str("\nName clashes:\n");
        for k in &plan.clashes {
            let why = match k.kind {
                ClashKind::SuffixTaken => format!("{} was taken", show(&k.wanted)),
                ClashKind::FileIsDirectory => {
                    format!("{} is a directory in the other tree", show(&k.wanted))
                }
            };
            out.push_str(&format!(
                "  {} ({}): {}; used {}\n",
                show(&k.original),
                k.arch.bits(),
                why,
                show(&k.chosen)
            ));
        }
    }
    let skipped: Vec<String> = [(Arch::X32, t32), (Arch::X64, t64)]
        .iter()
        .flat_map(|(a, t)| {
            t.skipped
                .iter()
                .map(move |s| format!("  {} ({}): {}", show(&s.path), a.bits(), s.reason))
        })
        .collect();
    if !skipped.is_empty() {
        out.push_str("\nSkipped (not source):\n");
        out.push_str(&skipped.join("\n"));
        out.push('\n');
    }
    if !plan.links.is_empty() {
        out.push_str("\nSymbolic links whose targets moved:\n");
        for l in &plan.links {
            out.push_str(&format!(
                "  {} -> {}: {}\n",
                show(&l.link),
                show(&l.target),
                l.note
            ));
        }
    }
    let text_pairs: Vec<_> = plan.pairs.iter().filter(|r| !r.not_text).collect();
    let saved: u64 = text_pairs.iter().map(|r| r.common).sum();
    let total: u64 = text_pairs.iter().map(|r| r.lines_32 + r.lines_64).sum();
    out.push_str(&format!(
        "\nFor the janitors: {} _32/_64 text pairs hold {} lines, {} of them duplicated in both copies ({:.1}%); \
         merging every pair would remove {} lines.\n",
        text_pairs.len(),
        total,
        2 * saved,
        if total == 0 { 0.0 } else { 200.0 * saved as f64 / total as f64 },
        saved
    ));
    if !text_pairs.is_empty() {
        out.push_str(&format!(
            "{:<40} {:>7} {:>7} {:>7} {:>6} {:>6}\n",
            "pair (most work saved first)", "lines32", "lines64", "common", "hunks", "simil"
        ));
        for r in text_pairs.iter().take(top) {
            out.push_str(&format!(
                "{:<40} {:>7} {:>7} {:>7} {:>6} {:>5.1}%\n",
                r.path,
                r.lines_32,
                r.lines_64,
                r.common,
                r.hunks,
                r.similarity()
            ));
        }
    }
    let other = plan.pairs.len() - text_pairs.len();
    if other > 0 {
        out.push_str(&format!(
            "{other} binary or symlink pairs have no line diff.\n"
        ));
    }
    out
}
