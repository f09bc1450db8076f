"""klab from Python.

Replay cache traces through page-replacement policies (textbook ones and
the Linux kernel's rules, run in klab's machine model), draw miss-ratio
curves, and run klab's experiments. Every call returns plain dicts and
lists, the numbers the ``klab`` command prints, and releases the GIL while
it works, so threads can run several at once.

    import klab
    r = klab.replay("trace.oracleGeneral.bin", policy="lru", memory="64MiB")
    print(r["hit_ratio"], r["misses"])
"""

from klab._errors import (
    FileError,
    HostError,
    InputError,
    KlabError,
    TraceError,
    UsageError,
)
from klab._klab import __version__, experiments, mrc, policies, replay, run

__all__ = [
    "FileError",
    "HostError",
    "InputError",
    "KlabError",
    "TraceError",
    "UsageError",
    "__version__",
    "experiments",
    "mrc",
    "policies",
    "replay",
    "run",
    "to_pandas",
]


def to_pandas(result, table=None):
    """A pandas DataFrame of a klab result (pandas is needed for this call
    only; ``pip install pandas``).

    * a list of dicts (``mrc``, ``experiments``): one row per dict;
    * a report dict (``run``, or ``replay(...)["report"]``): the table
      titled ``table``, or the first;
    * a ``replay`` dict: its ``mrc`` rows when it has them, else one row of
      its counts.
    """
    try:
        import pandas
    except ImportError as e:
        raise ImportError("klab.to_pandas needs pandas: pip install pandas") from e
    if isinstance(result, list):
        return pandas.DataFrame(result)
    if not isinstance(result, dict):
        raise TypeError(f"to_pandas takes a list or dict from klab, not {type(result).__name__}")
    if "tables" in result:
        tables = result["tables"]
        if not tables:
            raise ValueError(f"report {result.get('experiment')!r} has no table")
        if table is None:
            t = tables[0]
        else:
            found = [t for t in tables if t["title"] == table]
            if not found:
                titles = ", ".join(repr(t["title"]) for t in tables)
                raise ValueError(f"no table {table!r}; tables: {titles}")
            t = found[0]
        return pandas.DataFrame(t["rows"], columns=t["columns"])
    if result.get("mrc"):
        return pandas.DataFrame(result["mrc"])
    scalars = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    return pandas.DataFrame([scalars])
