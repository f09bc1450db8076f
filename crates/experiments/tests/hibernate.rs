//! Hibernation of every model experiment: stopped at several points of
//! its run, its image resumed to the end gives the uninterrupted run's
//! report and every job's final state, byte for byte; damaged images and
//! experiments that do real work on the host are refused.
use klab_experiments::find;
use klab_lab::hibernate::{Driver, hibernate_at, resume};
use klab_lab::{Ctx, ExperimentError, Inputs, NoProgress, Report};

/// Runs `name` uninterrupted and hibernated at each fraction of its
/// length, resumes each image, and checks the resumed run ends in the
/// same state: the same report, and every job's final state the same
/// bytes.
#[track_caller]
fn resumes_identically(name: &str, fractions: &[f64]) {
    let e = find(name).expect("registered");
    let inputs = Inputs::default();
    let ctx = Ctx::new(3, true, &inputs);
    let whole = Driver::new(None).recording();
    let full = e.run(&ctx.with_driver(&whole)).expect("uninterrupted run");
    let plain = e.run(&ctx).expect("run without a driver");
    let json = |r: &Report| serde_json::to_string(r).expect("json");
    assert_eq!(
        json(&full),
        json(&plain),
        "{name}: the driver changes nothing"
    );
    let total = whole.clock();
    assert!(total > 0, "{name}: the driver counted no tick");
    for &f in fractions {
        let at = ((total as f64 * f) as u64).clamp(1, total - 1);
        let first = Driver::new(Some(at)).recording();
        let err = e.run(&ctx.with_driver(&first)).err();
        assert!(
            matches!(err, Some(ExperimentError::Hibernated(t)) if t >= at),
            "{name} at {at}: {err:?}"
        );
        let image = first.image(name, &ctx, at);
        let r = resume(&image, &find, &NoProgress, true).expect("resume");
        assert_eq!(r.header.requested_at, at);
        assert_eq!(
            json(&r.report),
            json(&full),
            "{name} resumed at {at}: report"
        );
        let mut states = first.final_states();
        states.extend(r.driver.final_states());
        assert_eq!(
            states,
            whole.final_states(),
            "{name} resumed at {at}: job states"
        );
        assert_eq!(r.driver.clock(), total, "{name} resumed at {at}: clock");
        assert_eq!(
            r.driver.idle(),
            whole.idle(),
            "{name} resumed at {at}: idle"
        );
    }
}

#[test]
fn workingset_resumes_identically() {
    resumes_identically("workingset", &[0.0, 0.13, 0.5, 0.99]);
}

#[test]
fn memcg_experiments_resume_identically() {
    for name in ["memcg", "memcg-limit", "memcg-oom", "memcg-shared"] {
        resumes_identically(name, &[0.29, 0.71]);
    }
}

#[test]
fn hwpoison_resumes_identically() {
    resumes_identically("hwpoison", &[0.0, 0.45]);
}

#[test]
fn radix_tree_resumes_identically() {
    resumes_identically("radix-tree", &[0.2, 0.6]);
}

#[test]
fn the_other_model_experiments_resume_identically() {
    for name in [
        "o-nostd",
        "packet-pipes",
        "sysfs-active",
        "lro",
        "too-many-threads",
    ] {
        resumes_identically(name, &[0.5]);
    }
}

#[test]
fn a_damaged_or_foreign_image_is_refused() {
    let e = find("workingset").unwrap();
    let inputs = Inputs::default();
    let ctx = Ctx::new(3, true, &inputs);
    let img = hibernate_at(e, &ctx, 1000).unwrap();
    let err = resume(&img[..img.len() - 3], &find, &NoProgress, false)
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("offset 16: truncated"), "{err}");
    let err = hibernate_at(e, &ctx, u64::MAX).err().unwrap();
    assert!(matches!(err, ExperimentError::EndedBefore { .. }), "{err}");
    let slub = find("slub").unwrap();
    let err = hibernate_at(slub, &ctx, 10).err().unwrap();
    assert!(err.to_string().contains("slub cannot hibernate"), "{err}");
    // Real threads since its verdict comes from /proc/self/task.
    let lazy = find("lazy-workqueue").unwrap();
    let err = hibernate_at(lazy, &ctx, 10).err().unwrap();
    assert!(
        err.to_string().contains("lazy-workqueue cannot hibernate"),
        "{err}"
    );
    // loop-dio binds a real loop device and times real reads.
    let err = hibernate_at(find("loop-dio").unwrap(), &ctx, 10)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("loop-dio cannot hibernate"),
        "{err}"
    );
}
