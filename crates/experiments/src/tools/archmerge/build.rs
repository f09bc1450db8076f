//! Each architecture built with a real compiler, before and after the
//! merge (issue 21, "the merged tree builds the same bytes").
//!
//! The build list of an architecture is its regular `*.c` files: before the
//! merge, those of its own tree; after, the merged files its manifest
//! (`OUT/.archmerge/manifest-{32,64}.txt`, the rewritten build list) picks,
//! in the same order (by original path). Each file becomes one translation
//! unit: [`PRELUDE`], a function named after the original path, the file's
//! text as its body. Units compile with `gcc -m32` or `-m64` and
//! [`CFLAGS`] (no debug information, no unwind tables, no compiler
//! identification: nothing but the code depends on the build), from a
//! fixed file name in a scratch directory, and link with `gcc -r` into one
//! relocatable image per architecture. The images before and after are
//! compared byte for byte.

use std::path::Path;
use std::process::Command;

use klab_archmerge::scan::Content;
use klab_archmerge::{Arch, Manifest, Tree};
use serde::{Deserialize, Serialize};

/// A build list entry: (original path, text).
type Unit = (Vec<u8>, Vec<u8>);

/// What every unit starts with.
pub const PRELUDE: &str = "extern void op(int, int);\n#define OP(t, i, n) op(i, n)\n";

/// Compiler flags besides `-m32`/`-m64`.
pub const CFLAGS: &[&str] = &[
    "-O2",
    "-ffreestanding",
    "-fno-pic",
    "-fno-asynchronous-unwind-tables",
    "-fno-ident",
    "-w",
];

/// One architecture's image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Units compiled.
    pub units: u64,
    /// Bytes of the linked image.
    pub bytes: u64,
    /// FNV-1a 64 of the image, in hex.
    pub digest: String,
}

/// The images of both architectures, before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// i386 and x86_64 before the merge.
    pub before: [Image; 2],
    /// ... and after.
    pub after: [Image; 2],
    /// Whether each architecture's images are the same bytes.
    pub identical: [bool; 2],
}

/// Whether the build ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BuildOutcome {
    /// Both architectures built before and after.
    Built(Build),
    /// Not built, and why.
    Skipped(String),
}

/// `gcc -mBITS` can compile and link a unit: `Err(why not)` otherwise.
pub fn probe(scratch: &Path) -> Result<(), String> {
    for arch in Arch::BOTH {
        let dir = scratch.join(format!("probe{}", arch.bits()));
        let image = build(&dir, arch, vec![(b"probe.c".to_vec(), b";\n".to_vec())])
            .map_err(|e| format!("gcc -m{} cannot build here: {e}", arch.bits()))?;
        if image.is_empty() {
            return Err(format!("gcc -m{} linked an empty image", arch.bits()));
        }
    }
    Ok(())
}

/// Builds both architectures from the input trees and from the merged tree
/// `out` (the four builds on threads of their own, each in its own scratch
/// directory).
pub fn before_and_after(scratch: &Path, trees: [&Tree; 2], out: &Path) -> Result<Build, String> {
    let mut jobs = Vec::new();
    for arch in Arch::BOTH {
        let dir = scratch.join(format!("build{}", arch.bits()));
        jobs.push((arch, dir.join("before"), tree_units(trees[arch.index()])));
        jobs.push((arch, dir.join("after"), merged_units(arch, out)?));
    }
    let built: Vec<Result<(u64, Vec<u8>), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(arch, dir, units)| {
                s.spawn(move || {
                    let n = units.len() as u64;
                    build(&dir, arch, units).map(|bytes| (n, bytes))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a build thread panicked".into()))
            })
            .collect()
    });
    let built = built.into_iter().collect::<Result<Vec<_>, String>>()?;
    let [(nb32, b32), (na32, a32), (nb64, b64), (na64, a64)] =
        <[(u64, Vec<u8>); 4]>::try_from(built).map_err(|_| "four builds".to_owned())?;
    Ok(Build {
        before: [image(nb32, &b32), image(nb64, &b64)],
        after: [image(na32, &a32), image(na64, &a64)],
        identical: [a32 == b32, a64 == b64],
    })
}

fn image(units: u64, bytes: &[u8]) -> Image {
    Image {
        units,
        bytes: bytes.len() as u64,
        digest: format!("{:016x}", fnv(bytes)),
    }
}

fn is_c(path: &[u8]) -> bool {
    path.ends_with(b".c")
}

/// (original path, text) of a tree's regular `*.c` files, by path.
fn tree_units(tree: &Tree) -> Vec<Unit> {
    tree.files
        .iter()
        .filter(|(p, _)| is_c(p))
        .filter_map(|(p, c)| match c {
            Content::File { data, .. } => Some((p.clone(), data.clone())),
            _ => None,
        })
        .collect()
}

/// (original path, text) of the merged files `arch`'s manifest picks.
fn merged_units(arch: Arch, out: &Path) -> Result<Vec<Unit>, String> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = out
        .join(".archmerge")
        .join(klab_archmerge::manifest::file_name(arch));
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = Manifest::parse(arch, &text, &path).map_err(|e| e.to_string())?;
    let mut units = Vec::new();
    for (merged, original) in m.entries {
        if !is_c(&original) {
            continue;
        }
        let file = out.join(std::ffi::OsStr::from_bytes(&merged));
        let meta =
            std::fs::symlink_metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        if meta.is_file() {
            let data = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            units.push((original, data));
        }
    }
    units.sort();
    Ok(units)
}

/// The unit of `original`'s text: the prelude, then the text as the body
/// of a function named after the path.
fn unit(original: &[u8], text: &[u8]) -> Vec<u8> {
    let name: String = original
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    let mut u = PRELUDE.as_bytes().to_vec();
    u.extend_from_slice(format!("void unit_{}_{:x}(void) {{\n", name, fnv(original)).as_bytes());
    u.extend_from_slice(text);
    u.extend_from_slice(b"\n;\n}\n");
    u
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn gcc(dir: &Path, arch: Arch, args: &[&str]) -> Result<(), String> {
    let out = Command::new("gcc")
        .current_dir(dir)
        .arg(format!("-m{}", arch.bits()))
        .args(args)
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gcc -m{} {}: {}",
            arch.bits(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Compiles `units` (sorted by original path) and links them into one
/// relocatable image; returns its bytes.
fn build(dir: &Path, arch: Arch, units: Vec<Unit>) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut objects = Vec::new();
    for (i, (original, text)) in units.iter().enumerate() {
        std::fs::write(dir.join("unit.c"), unit(original, text))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let obj = format!("{i:05}.o");
        let mut args = CFLAGS.to_vec();
        args.extend(["-c", "unit.c", "-o", &obj]);
        gcc(dir, arch, &args)
            .map_err(|e| format!("{e} (unit for {})", klab_archmerge::scan::show(original)))?;
        objects.push(obj);
    }
    let mut args = vec!["-nostdlib", "-r", "-o", "image.o"];
    args.extend(objects.iter().map(String::as_str));
    gcc(dir, arch, &args)?;
    std::fs::read(dir.join("image.o")).map_err(|e| format!("{}: {e}", dir.display()))
}
