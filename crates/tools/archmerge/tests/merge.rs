//! archmerge end to end on disk: generated trees with every case, merged,
//! verified, and the verification shown to catch tampering.

use std::path::Path;

use klab_archmerge::plan::ClashKind;
use klab_archmerge::synth::{self, SynthTrees};
use klab_archmerge::{Arch, ArchmergeError, merge, verify};
use rand::SeedableRng;

fn trees(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let cfg = SynthTrees {
        shared_per_dir: 6,
        lines: 40,
        ..SynthTrees::default()
    };
    let (t32, t64) = synth::generate(&cfg, &mut rng);
    let (a, b) = (root.join("i386"), root.join("x86_64"));
    synth::write(&t32, &a).unwrap();
    synth::write(&t64, &b).unwrap();
    (a, b)
}

#[test]
fn generated_trees_merge_and_verify_with_every_case() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = trees(tmp.path());
    // A FIFO is not source: reported, skipped, and not part of any build.
    let fifo = Command::new("mkfifo").arg(a.join("kernel/fifo")).status();
    let have_fifo = fifo.is_ok_and(|s| s.success());
    let out = tmp.path().join("x86");
    let plan = merge(&a, &b, &out).unwrap();
    let c = plan.counts;
    assert!(c.common > 0 && c.split > 0 && c.only_32 > 0 && c.only_64 > 0);
    assert!(c.binary >= 3 && c.symlinks >= 4);
    assert!(
        plan.clashes
            .iter()
            .any(|k| k.kind == ClashKind::SuffixTaken && k.chosen == b"kernel/x_32_2.c")
    );
    assert!(
        plan.clashes
            .iter()
            .any(|k| k.kind == ClashKind::FileIsDirectory && k.chosen == b"boot/compressed_32")
    );
    // Empty directories (both trees) and the FIFO.
    assert_eq!(c.skipped, 2 + u64::from(have_fifo));
    assert!(
        plan.links
            .iter()
            .any(|l| l.link == b"kernel/ioport-alias.c")
    );
    assert!(
        std::fs::symlink_metadata(out.join("include/asm_32"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let v = verify(&a, &b, &out).unwrap();
    assert!(v.ok(), "{v:#?}");
    assert_eq!(
        v.arch[Arch::X32.index()].matched,
        v.arch[Arch::X32.index()].files
    );
    assert!(v.arch[Arch::X64.index()].bytes > 0);
    assert!(!tmp.path().read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".archmerge-")
    }));
}

use std::process::Command;

#[test]
fn an_existing_output_is_never_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = trees(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), "mine").unwrap();
    let e = merge(&a, &b, &out).unwrap_err();
    assert!(matches!(e, ArchmergeError::OutputExists(_)), "{e}");
    assert!(e.to_string().contains("already exists"));
    assert_eq!(std::fs::read_to_string(out.join("keep")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn verification_catches_changed_missing_and_stray_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = trees(tmp.path());
    let out = tmp.path().join("x86");
    merge(&a, &b, &out).unwrap();

    std::fs::write(out.join("kernel/x_64.c"), "int x = 65;\n").unwrap();
    let v = verify(&a, &b, &out).unwrap();
    assert!(!v.ok());
    assert_eq!(v.arch[Arch::X64.index()].failures.len(), 1);
    assert!(v.arch[Arch::X64.index()].failures[0].starts_with("kernel/x_64.c differs"));
    assert!(v.arch[Arch::X32.index()].failures.is_empty());

    std::fs::write(out.join("kernel/x_64.c"), "int x = 64;\n").unwrap();
    std::fs::remove_file(out.join("kernel/x_32_2.c")).unwrap();
    std::fs::write(out.join("stray.c"), "nobody builds me\n").unwrap();
    let v = verify(&a, &b, &out).unwrap();
    assert!(v.arch[Arch::X32.index()].failures[0].contains("is missing"));
    assert_eq!(v.strays, ["stray.c"]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = trees(tmp.path());
    let e = merge(&a.join("nope"), &b, &tmp.path().join("o1")).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let e = merge(&tmp.path().join("file"), &b, &tmp.path().join("o2")).unwrap_err();
    assert!(e.to_string().ends_with("not a directory"), "{e}");
    std::fs::create_dir_all(a.join(".archmerge")).unwrap();
    std::fs::write(a.join(".archmerge/x"), "x").unwrap();
    let e = merge(&a, &b, &tmp.path().join("o3")).unwrap_err();
    assert!(e.to_string().contains("reserves"), "{e}");
    assert!(!tmp.path().join("o3").exists());
    // A malformed manifest names its file and line.
    std::fs::remove_dir_all(a.join(".archmerge")).unwrap();
    let out = tmp.path().join("o4");
    merge(&a, &b, &out).unwrap();
    let m = out.join(".archmerge/manifest-32.txt");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str("no-tab-here\n");
    std::fs::write(&m, &text).unwrap();
    let e = verify(&a, &b, &out).unwrap_err();
    let line = text.lines().count();
    assert!(
        e.to_string().ends_with(&format!(
            "manifest-32.txt:{line}: expected a tab between the merged and the original path"
        )),
        "{e}"
    );
}
