//! `klab run NAME --hibernate-at T --image FILE` and `klab resume FILE`
//! end to end: the resumed run writes the same report.json as an
//! uninterrupted one; damaged images, experiments that cannot hibernate and
//! a time past the end are refused with exit status 2 and no image.

use std::path::Path;
use std::process::{Command, Output};

fn klab(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "klab failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_resumed_run_writes_the_uninterrupted_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, img, resumed) = (
        tmp.path().join("full.json"),
        tmp.path().join("wk.img"),
        tmp.path().join("resumed"),
    );
    ok(&klab(
        &["run", "workingset", "--quick", "--seed", "5", "--out"],
        &[&tmp.path().join("a"), Path::new("--json"), &full],
    ));
    let said = ok(&klab(
        &[
            "run",
            "workingset",
            "--quick",
            "--seed",
            "5",
            "--hibernate-at",
            "20000",
            "--image",
        ],
        &[&img],
    ));
    assert!(said.contains("hibernated at virtual time 20000"), "{said}");
    assert!(
        !tmp.path().join("klab-report").exists(),
        "no report when hibernating"
    );
    ok(&klab(&["resume"], &[&img, Path::new("--out"), &resumed]));
    let a = std::fs::read_to_string(&full).unwrap();
    let b = std::fs::read_to_string(resumed.join("report.json")).unwrap();
    assert_eq!(a, b, "the resumed report is the uninterrupted one");
    assert!(resumed.join("report.html").is_file());
}

#[test]
fn bad_requests_and_damaged_images_exit_2_without_output() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("x.img");
    let o = klab(
        &["run", "slub", "--quick", "--hibernate-at", "10", "--image"],
        &[&img],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("slub cannot hibernate"));
    let o = klab(
        &[
            "run",
            "workingset",
            "--quick",
            "--hibernate-at",
            "999999999999",
            "--image",
        ],
        &[&img],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("before 999999999999: nothing to hibernate")
    );
    assert!(!img.exists(), "no image for a refused run");
    ok(&klab(
        &[
            "run",
            "workingset",
            "--quick",
            "--hibernate-at",
            "5000",
            "--image",
        ],
        &[&img],
    ));
    let mut bytes = std::fs::read(&img).unwrap();
    let cut = tmp.path().join("cut.img");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = klab(
        &["resume"],
        &[&cut, Path::new("--out"), &tmp.path().join("r")],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cut.img: offset 16: truncated"), "{err}");
    assert!(
        !tmp.path().join("r").exists(),
        "no report from a damaged image"
    );
    let n = bytes.len();
    bytes[n - 1] ^= 0x40;
    std::fs::write(&cut, &bytes).unwrap();
    let o = klab(&["resume"], &[&cut]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("offset 12: checksum"));
}
