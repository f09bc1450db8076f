//! devstats against its peers.
//!
//! * `history/*`: analysing a synthetic history of 300 commits (2 threads)
//!   against `git log --numstat --no-merges` on the same repository (git
//!   runs as a subprocess: it is the tool whose numbers devstats matches),
//!   packed with `git repack -a -d` as real repositories are.
//! * `lines/*`: counting the changed lines of a 2,000-line file with 10%
//!   of its lines rewritten, with devstats' port of git's xdiff against
//!   imara-diff's Myers in the same process.
//!
//! `cargo bench -p klab-devstats`; `klab bench devstats` prints the ratios.
#![allow(missing_docs)]

use std::hint::black_box;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use klab_devstats::synth::{self, SynthConfig};
use klab_devstats::walk::{self, NoProgress, Selection};
use rand::{Rng, SeedableRng};

fn history(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("h.git");
    let cfg = SynthConfig {
        commits: 300,
        developers: 60,
        ..SynthConfig::default()
    };
    synth::generate(&dir, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(1)).expect("synthetic history");
    let git = Command::new("git").arg("--version").output().is_ok();
    if git {
        let ok = Command::new("git")
            .arg("--git-dir")
            .arg(&dir)
            .args(["repack", "-a", "-d", "-q"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git repack");
    }
    let mut g = c.benchmark_group("history");
    g.sample_size(10);
    g.bench_function("klab", |b| {
        b.iter(|| {
            let repo = walk::open(&dir).expect("open");
            let ids = walk::commits(&repo, &Selection::default()).expect("walk");
            black_box(walk::analyse(&repo, &ids, 2, false, &NoProgress).expect("analyse"))
        })
    });
    if git {
        g.bench_function("git-log-numstat", |b| {
            b.iter(|| {
                let out = Command::new("git")
                    .arg("--git-dir")
                    .arg(&dir)
                    .args(["log", "--no-merges", "--numstat", "--format=%H %an", "main"])
                    .output()
                    .expect("git");
                black_box(out.stdout.len())
            })
        });
    }
    g.finish();
}

fn lines(c: &mut Criterion) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
    let old: Vec<String> = (0..2000)
        .map(|i| format!("line {i} {}\n", rng.random::<u32>()))
        .collect();
    let mut new = old.clone();
    for _ in 0..200 {
        let i = rng.random_range(0..new.len());
        new[i] = format!("changed {}\n", rng.random::<u32>());
    }
    let (a, b) = (old.concat(), new.concat());
    let mut g = c.benchmark_group("lines");
    g.bench_function("klab-xdiff", |bn| {
        bn.iter(|| black_box(klab_devstats::xdiff::count(a.as_bytes(), b.as_bytes())))
    });
    g.bench_function("imara-diff-myers", |bn| {
        bn.iter(|| {
            let input = imara_diff::InternedInput::new(a.as_bytes(), b.as_bytes());
            let d = imara_diff::Diff::compute(imara_diff::Algorithm::Myers, &input);
            black_box((d.count_additions(), d.count_removals()))
        })
    });
    g.finish();
}

criterion_group!(benches, history, lines);
criterion_main!(benches);
