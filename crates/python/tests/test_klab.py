"""The klab Python module against the klab command on the shared traces.

Needs the module installed (``maturin develop`` or the wheel) and the
``klab`` binary: ``KLAB_BIN``, or target/{ci,release,debug}/klab of this
checkout. The traces are ``KLAB_TRACES``, or ../shared/data/traces beside
the checkout. ``.ci/python`` sets both.
"""

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import klab

REPO = Path(__file__).resolve().parents[3]


def _klab_bin():
    given = os.environ.get("KLAB_BIN")
    if given:
        return Path(given)
    for profile in ("ci", "release", "debug"):
        p = REPO / "target" / profile / "klab"
        if p.exists():
            return p
    pytest.fail("no klab binary: build it (cargo build -p klab) or set KLAB_BIN")


def _traces():
    p = Path(os.environ.get("KLAB_TRACES", REPO.parent / "shared" / "data" / "traces"))
    if not (p / "cloudPhysicsIO.oracleGeneral.bin").exists():
        pytest.fail(f"no shared traces at {p}: set KLAB_TRACES")
    return p


KLAB = _klab_bin()
TRACE = _traces() / "cloudPhysicsIO.oracleGeneral.bin"


def cli(*args, ok=True):
    """Runs the klab command; its JSON on standard output when ok."""
    p = subprocess.run([str(KLAB), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    return p


def cli_message(p):
    """The error the CLI printed, without its `klab: ` prefix."""
    lines = p.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("klab: "), p.stderr
    return lines[-1][len("klab: "):]


def cli_replay(tmp_path, *args):
    p = cli("replay", TRACE, "--out", tmp_path / "out", "--json", "-", *args)
    reports = json.loads(p.stdout)["reports"]
    assert len(reports) == 1
    return reports[0]


def without_timings(report):
    """A replay report without what varies between runs: the speed."""
    r = json.loads(json.dumps(report))
    speed = next(t for t in r["tables"] if t["title"] == "speed")
    for row in speed["rows"]:
        row[0] = None
    r["host"] = None
    return r


@pytest.mark.parametrize(
    "policy,memory",
    [("lru", "4MiB"), ("arc", "16MiB"), ("clock", 1 << 20), ("workingset-6", "8MiB")],
)
def test_replay_equals_the_cli(tmp_path, policy, memory):
    want = cli_replay(tmp_path, "--policy", policy, "--memory", memory)
    r = klab.replay(TRACE, policy=policy, memory=memory)
    assert without_timings(r["report"]) == without_timings(want)
    row = dict(zip(want["tables"][0]["columns"], want["tables"][0]["rows"][0]))
    assert (r["requests"], r["hits"], r["misses"]) == (row["requests"], row["hits"], row["misses"])
    assert r["evictions"] == row["evictions"]
    assert r["refaults"] == row["refaults"]
    assert r["hit_ratio"] == row["hit ratio"]
    assert r["requests"] == 113872
    assert r["hits"] + r["misses"] == r["requests"]


def test_replay_options_reach_the_engine_as_the_cli_flags_do(tmp_path):
    want = cli_replay(
        tmp_path, "--memory", "2000", "--ignore-size", "--unit", "page",
        "--block-size", "4096", "--format", "oracleGeneral",
    )
    r = klab.replay(
        str(TRACE), "lru", 2000, "page", "oracleGeneral", ignore_size=True, block_size="4KiB"
    )
    assert without_timings(r["report"]) == without_timings(want)
    assert (r["unit"], r["block_size"], r["format"]) == ("page", 4096, "oracleGeneral")


def test_the_curve_equals_the_cli_curve(tmp_path):
    want = cli_replay(tmp_path, "--memory", "8MiB", "--mrc", "--threads", "2")
    curve = next(t for t in want["tables"] if t["title"] == "miss-ratio curve")
    sizes = [row[0] for row in curve["rows"]]
    assert len(sizes) == 16
    cells = klab.mrc(TRACE, ["lru", "fifo"], sizes, threads=2)
    assert [c["policy"] for c in cells] == ["lru"] * 16 + ["fifo"] * 16
    lru = cells[:16]
    assert [(c["misses"], c["miss_ratio"]) for c in lru] == [(row[1], row[2]) for row in curve["rows"]]
    r = klab.replay(TRACE, memory="8MiB", mrc=True, threads=2)
    assert [c["misses"] for c in r["mrc"]] == [c["misses"] for c in lru]
    assert without_timings(r["report"]) == without_timings(want)
    # A policy name alone is one policy; FIFO never beats LRU by much here,
    # but the cells are its own counts, not LRU's.
    fifo = klab.mrc(TRACE, "fifo", sizes[:2])
    assert [c["misses"] for c in fifo] == [c["misses"] for c in cells[16:18]]


def test_policies_are_the_ones_the_cli_knows():
    p = cli("replay", TRACE, "--memory", "1", "--policy", "no-such", ok=False)
    known = re.search(r"known policies: ([^\n]*)", p.stderr).group(1).strip()
    assert klab.policies() == known.split(", ")


def test_experiments_are_the_ones_the_cli_lists():
    names = cli("list", "--names").stdout.split()
    got = klab.experiments()
    assert [e["name"] for e in got] == names
    for e in got:
        assert e["seed_page"].endswith(".txt") and e["claim"], e
    assert next(e for e in got if e["name"] == "workingset")["inputs"] == ["trace"]


def truncated(tmp_path):
    """The shared trace's first record and 6 bytes of its second."""
    p = tmp_path / "short.oracleGeneral.bin"
    p.write_bytes(TRACE.read_bytes()[:30])
    return p


def test_a_bad_trace_raises_the_cli_message_with_file_and_offset(tmp_path):
    bad = truncated(tmp_path)
    with pytest.raises(klab.TraceError) as info:
        klab.replay(bad, memory="1MiB")
    e = info.value
    want = cli_message(cli("replay", bad, "--memory", "1MiB", "--out", tmp_path / "o", ok=False))
    assert str(e) == want
    assert str(e) == f"{bad}: record 1 at offset 24: truncated record: 6 of 24 bytes"
    assert (e.path, e.offset, e.record, e.line) == (str(bad), 24, 1, None)
    assert isinstance(e, ValueError) and isinstance(e, klab.KlabError)
    with pytest.raises(klab.TraceError, match="offset 24"):
        klab.mrc(bad, ["lru"], [4096])


def test_a_bad_text_line_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("lbn,size\n1,4096\nx,\n")
    with pytest.raises(klab.TraceError) as info:
        klab.replay(bad)
    want = cli_message(cli("replay", bad, "--memory", "1MiB", "--out", tmp_path / "o", ok=False))
    assert str(info.value) == want
    assert (info.value.line, info.value.offset, info.value.record) == (3, 16, None)


def test_a_missing_trace_is_an_os_error(tmp_path):
    missing = tmp_path / "none.oracleGeneral.bin"
    with pytest.raises(OSError) as info:
        klab.replay(missing)
    assert isinstance(info.value, klab.FileError)
    want = cli_message(cli("replay", missing, "--memory", "1MiB", "--out", tmp_path / "o", ok=False))
    assert str(info.value) == want


def test_bad_arguments_raise_value_errors():
    with pytest.raises(klab.UsageError, match='unknown policy "lfu"'):
        klab.replay(TRACE, policy="lfu")
    with pytest.raises(ValueError, match="memory: invalid size"):
        klab.replay(TRACE, memory="lots")
    with pytest.raises(TypeError, match="memory: expected"):
        klab.replay(TRACE, memory=1.5)
    with pytest.raises(klab.UsageError, match="unknown experiment no-such; known: "):
        klab.run("no-such")
    with pytest.raises(TypeError, match="unexpected keyword argument 'pcapng'"):
        klab.run("lro", pcapng="x")


def test_run_returns_the_report_the_cli_writes(tmp_path):
    r = klab.run("hwpoison", seed=2, quick=True)
    assert r["experiment"] == "hwpoison"
    assert r["verdict"]["holds"] in (True, False)
    assert r["verdict"]["measured"]
    p = cli("run", "hwpoison", "--seed", "2", "--quick", "--out", tmp_path / "o", "--json", "-")
    assert r == json.loads(p.stdout)["reports"][0]


def test_run_passes_inputs_and_reports_their_faults_as_the_cli(tmp_path):
    bad = truncated(tmp_path)
    with pytest.raises(klab.TraceError) as info:
        klab.run("workingset", quick=True, trace=bad)
    p = cli("run", "workingset", "--quick", "--trace", bad, "--out", tmp_path / "o", ok=False)
    assert f"klab: {info.value}" in p.stderr.splitlines()
    assert str(info.value).startswith("workingset: ")
    with pytest.raises(klab.UsageError) as info:
        klab.run("hwpoison", quick=True, trace=TRACE)
    p = cli("run", "hwpoison", "--quick", "--trace", TRACE, "--out", tmp_path / "o", ok=False)
    assert str(info.value) == cli_message(p)


def test_replay_releases_the_gil(tmp_path):
    # The trace is a FIFO: klab.replay, in a thread, blocks reading it
    # until the main thread, which needs the GIL, writes it. With the GIL
    # held the two wait on each other forever, so the script runs in a
    # child with a time limit.
    fifo = tmp_path / "fifo.oracleGeneral.bin"
    os.mkfifo(fifo)
    script = f"""
import threading, klab
out = {{}}
t = threading.Thread(target=lambda: out.update(r=klab.replay({str(fifo)!r}, memory="4MiB")))
t.start()
with open({str(fifo)!r}, "wb") as f:
    f.write(open({str(TRACE)!r}, "rb").read())
t.join()
print(out["r"]["hits"])
"""
    try:
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("klab.replay held the GIL while reading its trace: the writer never ran")
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) == klab.replay(TRACE, memory="4MiB")["hits"]


def test_threads_replay_at_once_with_the_numbers_of_one():
    one = klab.replay(TRACE, policy="arc", memory="2MiB")["hits"]
    out = []
    ts = [
        threading.Thread(target=lambda: out.append(klab.replay(TRACE, policy="arc", memory="2MiB")["hits"]))
        for _ in range(3)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [one] * 3


def test_to_pandas_where_pandas_is_installed():
    cells = klab.mrc(TRACE, ["lru"], ["1MiB", "2MiB"])
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            klab.to_pandas(cells)
        return
    df = klab.to_pandas(cells)
    assert list(df["misses"]) == [c["misses"] for c in cells]
    report = klab.replay(TRACE, memory="1MiB")["report"]
    t = klab.to_pandas(report, table="replay")
    assert int(t["hits"][0]) == report["tables"][0]["rows"][0][3]


def test_the_readme_example_runs_as_written():
    text = (REPO / "README.md").read_text()
    section = text.split("## Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip(), "the example prints its results"
