//! `klab archmerge` end to end: generated trees, `--verify`, and refusing
//! to overwrite.

use std::process::{Command, Output};

use klab_archmerge::synth::{self, SynthTrees};
use rand::SeedableRng;

fn klab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .output()
        .expect("klab runs")
}

#[test]
fn merge_verify_and_refuse_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (t32, t64) = synth::generate(
        &SynthTrees {
            shared_per_dir: 4,
            lines: 30,
            ..SynthTrees::default()
        },
        &mut rand_pcg::Pcg64::seed_from_u64(5),
    );
    let (a, b, out) = (
        tmp.path().join("i386"),
        tmp.path().join("x86_64"),
        tmp.path().join("x86"),
    );
    synth::write(&t32, &a).unwrap();
    synth::write(&t64, &b).unwrap();
    let args = [
        "archmerge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--verify",
    ];
    let o = klab(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains(
            "verified: each architecture builds exactly the bytes it built before the merge"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Name clashes:"), "{stdout}");
    assert!(stdout.contains("For the janitors"), "{stdout}");
    assert!(out.join(".archmerge/manifest-32.txt").is_file());
    assert!(out.join(".archmerge/janitor.tsv").is_file());

    let o = klab(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    let o = klab(&[
        "archmerge",
        tmp.path().join("nope").to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        tmp.path().join("o2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}
