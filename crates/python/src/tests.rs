//! The calls beneath the bindings, without a Python interpreter.

use std::path::Path;

use super::*;

/// A text trace (one object id per line) in a temporary directory.
fn txt_trace(dir: &Path, ids: &[u64]) -> PathBuf {
    let p = dir.join("t.txt");
    let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
    std::fs::write(&p, text).expect("write the trace");
    p
}

fn args(trace: PathBuf) -> TraceArgs {
    TraceArgs {
        trace,
        unit: None,
        format: None,
        ignore_size: true,
        block_size: None,
        threads: Some(2),
        sample: None,
        opt: true,
    }
}

#[test]
fn replay_counts_lru_hits_and_carries_the_cli_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    // LRU of 2 objects on 1 2 1 3 1 2: miss miss hit miss(evicts 2) hit miss(evicts 3).
    let a = args(txt_trace(dir.path(), &[1, 2, 1, 3, 1, 2]));
    let v = replay(&a, "lru", &Size::Count(2), false).expect("replay");
    assert_eq!(v["requests"], 6);
    assert_eq!(v["hits"], 2);
    assert_eq!(v["misses"], 4);
    assert_eq!(v["evictions"], 2);
    assert_eq!(v["unit"], "object");
    assert_eq!(v["policy"], "lru");
    assert_eq!(v["format"], "txt");
    assert_eq!(v["refaults"], Value::Null);
    assert_eq!(v["mrc"], json!([]));
    // The report is replay::run's, field for field (the speed cell aside).
    let opts = a.options(PolicyKind::Lru, 2, false).expect("options");
    let direct = replay::run(&opts, &NoProgress).expect("run");
    let mut want = report_value(&direct.report);
    let mut got = v["report"].clone();
    for r in [&mut want, &mut got] {
        r["tables"][1]["rows"][0][0] = Value::Null;
        r["host"] = Value::Null;
    }
    assert_eq!(got, want);
    assert_eq!(got["tables"][0]["rows"][0][3], 2, "hits in the report");
}

#[test]
fn replay_sizes_read_as_the_cli_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = args(txt_trace(dir.path(), &[1, 2, 1]));
    let v = replay(&a, "fifo", &Size::Text("1k".into()), false).expect("replay");
    assert_eq!(v["memory"], 1024);
    let e = replay(&a, "lru", &Size::Text("1.5GiB".into()), false).unwrap_err();
    assert!(matches!(e, Error::Usage(_)));
    assert!(
        e.to_string().starts_with("memory: invalid size \"1.5GiB\""),
        "{e}"
    );
    let e = replay(&a, "lru", &Size::Count(0), false).unwrap_err();
    assert_eq!(e.to_string(), "memory: must be at least 1");
}

#[test]
fn bad_arguments_are_usage_errors_naming_the_choices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = args(txt_trace(dir.path(), &[1]));
    let e = replay(&a, "lfu", &Size::Count(1), false).unwrap_err();
    assert!(
        matches!(&e, Error::Usage(m) if m.starts_with("unknown policy \"lfu\"; known policies: lru, ")),
        "{e}"
    );
    a.unit = Some("block".into());
    let e = replay(&a, "lru", &Size::Count(1), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown unit \"block\"; known units: object, page"
    );
    a.unit = None;
    a.format = Some("parquet".into());
    let e = replay(&a, "lru", &Size::Count(1), false).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown trace format \"parquet\""),
        "{e}"
    );
}

#[test]
fn a_truncated_binary_trace_is_a_trace_error_with_record_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.oracleGeneral.bin");
    // One whole 24-byte record, then 6 bytes of the next.
    let mut bytes = vec![0u8; 30];
    bytes[4] = 1; // obj_id 1
    bytes[12] = 8; // obj_size 8
    bytes[16..24].fill(0xff); // next_access -1: none
    std::fs::write(&p, &bytes).expect("write");
    let a = TraceArgs {
        ignore_size: false,
        ..args(p.clone())
    };
    let e = replay(&a, "lru", &Size::Count(4096), false).unwrap_err();
    let Error::Trace {
        message,
        path,
        offset,
        record,
        line,
    } = &e
    else {
        panic!("expected a trace error, got {e:?}");
    };
    assert_eq!(path, &p);
    assert_eq!((*offset, *record, *line), (Some(24), Some(1), None));
    assert_eq!(
        message,
        &format!(
            "{}: record 1 at offset 24: truncated record: 6 of 24 bytes",
            p.display()
        )
    );
}

#[test]
fn a_missing_trace_is_a_file_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("none.txt");
    let e = replay(&args(p.clone()), "lru", &Size::Count(1), false).unwrap_err();
    assert!(
        matches!(&e, Error::File { path, .. } if path == &p),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(&format!("{}: ", p.display())),
        "{e}"
    );
}

#[test]
fn mrc_is_every_policy_at_every_size_in_order_and_equals_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = [1, 2, 3, 1, 4, 2, 5, 1, 3, 2, 4, 1];
    let a = args(txt_trace(dir.path(), &ids));
    let sizes = [Size::Count(1), Size::Count(2), Size::Text("3".into())];
    let pols = ["lru".to_owned(), "fifo".to_owned(), "arc".to_owned()];
    let cells = mrc(&a, &pols, &sizes).expect("mrc");
    assert_eq!(cells.len(), 9);
    for (i, c) in cells.iter().enumerate() {
        let (p, m) = (&pols[i / 3], (i % 3) as u64 + 1);
        assert_eq!(c["policy"], p.as_str());
        assert_eq!(c["memory"], m);
        let one = replay(&a, p, &Size::Count(m), false).expect("replay");
        for k in ["requests", "hits", "misses", "evictions", "miss_bytes"] {
            assert_eq!(c[k], one[k], "{p} at {m}: {k}");
        }
    }
    // One object: only back-to-back repeats hit, and there are none.
    assert_eq!(cells[0]["hits"], 0);
}

#[test]
fn policies_are_the_names_replay_takes() {
    let p = policies();
    assert!(p.contains(&"lru") && p.contains(&"workingset-6"), "{p:?}");
    for name in p {
        assert!(parse_policy(name).is_ok(), "{name}");
    }
}

#[test]
fn experiments_list_the_registry_with_input_keywords() {
    let list = experiments();
    let names: Vec<&str> = list
        .iter()
        .map(|e| e["name"].as_str().unwrap_or(""))
        .collect();
    let want: Vec<&str> = klab_experiments::all().iter().map(|e| e.name()).collect();
    assert_eq!(names, want);
    let ws = list
        .iter()
        .find(|e| e["name"] == "workingset")
        .expect("workingset is listed");
    assert_eq!(ws["inputs"], json!(["trace"]));
    for e in &list {
        for k in e["inputs"].as_array().expect("inputs") {
            assert!(INPUT_KEYWORDS.contains(&k.as_str().unwrap_or("")), "{k}");
        }
    }
}

#[test]
fn run_checks_the_name_and_inputs_as_the_cli_does() {
    let e = run("no-such", 1, true, &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown experiment no-such; known: radix-tree, "),
        "{e}"
    );
    let pcap = Input {
        keyword: "pcap".into(),
        value: "x.pcap".into(),
    };
    let e = run("workingset", 1, true, &[pcap]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--pcap is not used by the selected experiments; experiments that take it: lro"
    );
    let missing = Input {
        keyword: "trace".into(),
        value: "/nonexistent/t.txt".into(),
    };
    let e = run("workingset", 1, true, &[missing]).unwrap_err();
    assert!(matches!(&e, Error::File { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("--trace /nonexistent/t.txt: "),
        "{e}"
    );
    let bad = Input {
        keyword: "suite".into(),
        value: "x".into(),
    };
    assert!(matches!(
        run("workingset", 1, true, &[bad]),
        Err(Error::Usage(_))
    ));
}

#[test]
fn run_returns_the_report_of_the_experiment() {
    let v = run("hwpoison", 3, true, &[]).expect("run");
    assert_eq!(v["experiment"], "hwpoison");
    assert_eq!(v["config"]["seed"], 3);
    assert_eq!(v["config"]["quick"], true);
    assert!(v["verdict"]["holds"].is_boolean(), "{}", v["verdict"]);
}
