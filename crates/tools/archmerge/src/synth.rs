//! A deterministic pair of synthetic architecture trees with every case
//! the merge must handle, shaped like arch/i386 and arch/x86_64 before
//! 2.6.24 (the 32-bit tree larger, carrying legacy files).
//!
//! ```text
//!  per directory (kernel, mm, boot, lib, pci, ...):
//!   identical   ~25% of shared names: the same bytes in both
//!   differing   ~75% of shared names: the two copies share a seeded
//!               fraction of their lines (uniform 10%..95%), the rest
//!               diverges, so the janitor report has a spread to sort
//!   one-sided   32-only legacy files (more of them) and 64-only files
//!  plus, once each: identical and differing binary blobs, identical and
//!  differing symlinks, a link to a file that gets split, a file that only
//!  differs in its executable bit, an existing `x_32.c` beside a
//!  differing `x.c`, a path that is a file in one tree and a directory in
//!  the other, and a name with a tab and non-UTF-8 bytes
//! ```
//!
//! Text files are C statements (`OP(tag,i, n);`, empty statements, blank
//! lines): wrapped in a function whose name comes from the file's path,
//! after a prelude defining `OP`, each compiles with `gcc -m32` or `-m64`.
//!
//! [`write`] puts a tree on disk (plus an empty directory, which the merge
//! reports and skips).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use rand::Rng;

use crate::error::ArchmergeError;
use crate::scan::{Content, RelPath, Tree};

const DIRS: [&str; 8] = [
    "kernel",
    "mm",
    "boot",
    "lib",
    "pci",
    "power",
    "kernel/cpu",
    "mach-default",
];
const STEMS: [&str; 24] = [
    "setup", "traps", "process", "signal", "ioport", "ldt", "time", "smp", "smpboot", "apic",
    "io_apic", "irq", "e820", "mpparse", "reboot", "sys", "entry", "head", "vsyscall", "tsc",
    "nmi", "pci-dma", "init", "fault",
];

/// Size of the generated pair.
#[derive(Debug, Clone, Copy)]
pub struct SynthTrees {
    /// Shared names per directory.
    pub shared_per_dir: usize,
    /// Extra files only in the 32-bit tree, per directory.
    pub only_32_per_dir: usize,
    /// Extra files only in the 64-bit tree, per directory.
    pub only_64_per_dir: usize,
    /// Lines per text file (the mean; actual sizes vary ±50%).
    pub lines: usize,
}

impl Default for SynthTrees {
    fn default() -> Self {
        SynthTrees {
            shared_per_dir: 12,
            only_32_per_dir: 4,
            only_64_per_dir: 2,
            lines: 200,
        }
    }
}

fn text_lines(rng: &mut impl Rng, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match rng.random_range(0..6) {
            0 => "\n".to_owned(),
            1 => ";\n".to_owned(),
            _ => format!("\tOP({tag},{i}, {});\n", rng.random_range(0..1000)),
        })
        .collect()
}

/// Generates the two trees.
pub fn generate(cfg: &SynthTrees, rng: &mut impl Rng) -> (Tree, Tree) {
    let mut t32: BTreeMap<RelPath, Content> = BTreeMap::new();
    let mut t64: BTreeMap<RelPath, Content> = BTreeMap::new();
    let file = |lines: &[String]| Content::File {
        data: lines.concat().into_bytes(),
        executable: false,
    };
    for dir in DIRS {
        for k in 0..cfg.shared_per_dir {
            let name = format!(
                "{dir}/{}{}.c",
                STEMS[k % STEMS.len()],
                if k >= STEMS.len() {
                    format!("{k}")
                } else {
                    String::new()
                }
            );
            let n = (cfg.lines / 2 + rng.random_range(0..=cfg.lines)).max(4);
            let base = text_lines(rng, &format!("{dir}_{k}"), n);
            if rng.random::<f64>() < 0.25 {
                t32.insert(name.clone().into_bytes(), file(&base));
                t64.insert(name.into_bytes(), file(&base));
                continue;
            }
            // Keep a seeded fraction of the lines in common; rewrite the rest
            // in each copy (in runs, as real divergence comes).
            let keep = 0.1 + 0.85 * rng.random::<f64>();
            let mut a = Vec::with_capacity(n);
            let mut b = Vec::with_capacity(n);
            let mut i = 0;
            while i < n {
                let run = rng.random_range(1..12).min(n - i);
                if rng.random::<f64>() < keep {
                    a.extend_from_slice(&base[i..i + run]);
                    b.extend_from_slice(&base[i..i + run]);
                } else {
                    a.extend(text_lines(rng, "i386", run));
                    let extra = rng.random_range(0..3);
                    b.extend(text_lines(rng, "x86_64", run + extra));
                }
                i += run;
            }
            if a == b {
                b.push("/* 64-bit */\n".into());
            }
            t32.insert(name.clone().into_bytes(), file(&a));
            t64.insert(name.into_bytes(), file(&b));
        }
        for k in 0..cfg.only_32_per_dir {
            let n = cfg.lines / 2 + 1;
            t32.insert(
                format!("{dir}/legacy{k}_32only.c").into_bytes(),
                file(&text_lines(rng, "legacy", n)),
            );
        }
        for k in 0..cfg.only_64_per_dir {
            let n = cfg.lines / 2 + 1;
            t64.insert(
                format!("{dir}/new{k}_64only.c").into_bytes(),
                file(&text_lines(rng, "amd64", n)),
            );
        }
    }
    // The special cases, once each.
    let blob = |rng: &mut dyn rand::RngCore, n: usize| -> Vec<u8> {
        (0..n)
            .map(|i| {
                if i % 5 == 0 {
                    0
                } else {
                    (rng.next_u32() & 0xff) as u8
                }
            })
            .collect()
    };
    let fw = blob(rng, 300);
    t32.insert(
        b"firmware/microcode.bin".to_vec(),
        Content::File {
            data: fw.clone(),
            executable: false,
        },
    );
    t64.insert(
        b"firmware/microcode.bin".to_vec(),
        Content::File {
            data: fw,
            executable: false,
        },
    );
    t32.insert(
        b"firmware/vga.bin".to_vec(),
        Content::File {
            data: blob(rng, 200),
            executable: false,
        },
    );
    t64.insert(
        b"firmware/vga.bin".to_vec(),
        Content::File {
            data: blob(rng, 220),
            executable: false,
        },
    );
    let link = |t: &str| Content::Symlink {
        target: t.as_bytes().to_vec(),
    };
    t32.insert(b"include/asm".to_vec(), link("../include/asm-i386"));
    t64.insert(b"include/asm".to_vec(), link("../include/asm-x86_64"));
    t32.insert(b"include/common-link".to_vec(), link("../lib/setup.c"));
    t64.insert(b"include/common-link".to_vec(), link("../lib/setup.c"));
    t32.insert(b"kernel/ioport-alias.c".to_vec(), link("ioport.c"));
    t64.insert(b"kernel/ioport-alias.c".to_vec(), link("ioport.c"));
    let script = "#!/bin/sh\necho build\n".as_bytes().to_vec();
    t32.insert(
        b"tools/mkimage.sh".to_vec(),
        Content::File {
            data: script.clone(),
            executable: true,
        },
    );
    t64.insert(
        b"tools/mkimage.sh".to_vec(),
        Content::File {
            data: script,
            executable: false,
        },
    );
    t32.insert(b"kernel/x.c".to_vec(), file(&["int x = 32;\n".to_owned()]));
    t64.insert(b"kernel/x.c".to_vec(), file(&["int x = 64;\n".to_owned()]));
    t32.insert(
        b"kernel/x_32.c".to_vec(),
        file(&["/* already suffixed */\n".to_owned()]),
    );
    t32.insert(
        b"boot/compressed".to_vec(),
        file(&["a file in i386\n".to_owned()]),
    );
    t64.insert(
        b"boot/compressed/head.S".to_vec(),
        file(&["a directory in x86_64\n".to_owned()]),
    );
    t32.insert(b"odd/tab\tname\xff.c".to_vec(), file(&["32\n".to_owned()]));
    t64.insert(b"odd/tab\tname\xff.c".to_vec(), file(&["64\n".to_owned()]));
    (Tree::from_files(t32), Tree::from_files(t64))
}

/// Writes `tree` under `dir` (created), plus an empty directory `empty/`.
pub fn write(tree: &Tree, dir: &Path) -> Result<(), ArchmergeError> {
    std::fs::create_dir_all(dir.join("empty")).map_err(|e| ArchmergeError::io(dir, e))?;
    for (p, c) in &tree.files {
        let dest = dir.join(Path::new(std::ffi::OsStr::from_bytes(p)));
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| ArchmergeError::io(d, e))?;
        }
        match c {
            Content::File { data, executable } => {
                std::fs::write(&dest, data).map_err(|e| ArchmergeError::io(&dest, e))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| ArchmergeError::io(&dest, e))?;
            }
            Content::Symlink { target } => {
                std::os::unix::fs::symlink(Path::new(std::ffi::OsStr::from_bytes(target)), &dest)
                    .map_err(|e| ArchmergeError::io(&dest, e))?;
            }
        }
    }
    Ok(())
}
