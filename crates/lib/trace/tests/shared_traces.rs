//! The four files of the shared cloudPhysicsIO sample describe the same
//! 113,872 requests (see shared/data/traces/README.md): every reader must
//! agree with that README's numbers.

use std::path::{Path, PathBuf};

use klab_trace::{Format, Op, read};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/traces")
        .join(name)
}

#[test]
fn all_four_formats_hold_the_same_request_sequence() {
    let oracle = read(&data("cloudPhysicsIO.oracleGeneral.bin"), None).unwrap();
    let vscsi = read(&data("cloudPhysicsIO.vscsi"), None).unwrap();
    let csv = read(&data("cloudPhysicsIO.csv"), None).unwrap();
    let txt = read(&data("cloudPhysicsIO.txt"), None).unwrap();
    for t in [&oracle, &vscsi, &csv, &txt] {
        assert_eq!(t.len(), 113_872);
    }
    for i in 0..oracle.len() {
        assert_eq!(oracle[i].obj_id, vscsi[i].obj_id, "request {i}");
        assert_eq!(vscsi[i].obj_id, csv[i].obj_id, "request {i}");
        assert_eq!(csv[i].obj_id, txt[i].obj_id, "request {i}");
        assert_eq!(vscsi[i].size, csv[i].size, "request {i}");
        assert_eq!(vscsi[i].op, csv[i].op, "request {i}");
    }
    let distinct: std::collections::BTreeSet<u64> = oracle.iter().map(|r| r.obj_id).collect();
    assert_eq!(distinct.len(), 48_974);
    let sum = |t: &[klab_trace::Request]| t.iter().map(|r| u64::from(r.size)).sum::<u64>();
    assert_eq!(sum(&vscsi), 4_205_978_112);
    assert_eq!(sum(&csv), 4_205_978_112);
    assert_eq!(sum(&oracle), 4_368_040_448);
    assert!(txt.iter().all(|r| r.size == 1));
    assert_eq!(vscsi.iter().filter(|r| r.op == Op::Read).count(), 46_974);
    assert_eq!(vscsi.iter().filter(|r| r.op == Op::Write).count(), 66_898);
    let first = vscsi[0];
    assert_eq!(
        (first.obj_id, first.size, first.time),
        (42932745, 512, 5633898368802)
    );
}

#[test]
fn oracle_next_access_points_at_the_next_request_to_the_same_object() {
    let oracle = read(
        &data("cloudPhysicsIO.oracleGeneral.bin"),
        Some(Format::OracleGeneral),
    )
    .unwrap();
    let mut next = std::collections::HashMap::new();
    for i in (0..oracle.len()).rev() {
        let expected = next.insert(oracle[i].obj_id, i as u64);
        assert_eq!(oracle[i].next_access, expected, "request {i}");
    }
}
