//! The PyO3 glue: `klab._klab`, re-exported by `python/klab/__init__.py`.
//!
//! Each function converts its arguments, releases the GIL while the work
//! runs (`Python::detach`), and turns the result into Python dicts and
//! lists (`pythonize`) or the error into the exception of
//! `klab._errors` that matches it.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::Value;

use crate::{Error, INPUT_KEYWORDS, Input, Size, TraceArgs};

/// The `klab._klab` extension module.
#[pymodule]
#[pyo3(name = "_klab")]
fn klab_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(replay, m)?)?;
    m.add_function(wrap_pyfunction!(mrc, m)?)?;
    m.add_function(wrap_pyfunction!(policies, m)?)?;
    m.add_function(wrap_pyfunction!(experiments, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    Ok(())
}

/// Raises the `klab` exception for `e`: its text is the CLI's message, and
/// trace faults carry `path`, `offset`, `record` and `line`.
fn raise(py: Python<'_>, e: Error) -> PyErr {
    let (class, path, offset, record, line) = match &e {
        Error::Usage(_) => ("UsageError", None, None, None, None),
        Error::Trace {
            path,
            offset,
            record,
            line,
            ..
        } => ("TraceError", Some(path), *offset, *record, *line),
        Error::File { path, .. } => ("FileError", Some(path), None, None, None),
        Error::Input { path, .. } => ("InputError", Some(path), None, None, None),
        Error::Host(_) => ("HostError", None, None, None, None),
        Error::Other(_) => ("KlabError", None, None, None, None),
    };
    let build = || -> PyResult<PyErr> {
        let cls = py.import("klab._errors")?.getattr(class)?;
        let exc = cls.call1((e.to_string(),))?;
        exc.setattr("path", path.map(|p| p.display().to_string()))?;
        exc.setattr("offset", offset)?;
        exc.setattr("record", record)?;
        exc.setattr("line", line)?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(pythonize::pythonize(py, v)?.unbind())
}

/// A size: an int, or text such as `"64MiB"`.
fn size(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Size> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Size::Text(s.to_cow()?.into_owned()));
    }
    v.extract::<u64>().map(Size::Count).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected a non-negative int or a size such as \"64MiB\", got {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })
}

/// Replays a trace through a policy, as `klab replay` does.
///
/// Returns a dict: the counts (`requests`, `hits`, `misses`, `hit_ratio`,
/// `miss_ratio`, `request_bytes`, `miss_bytes`, `evictions`, and
/// `refaults`/`activations` for the kernel rules), the speed, `mrc` (with
/// `mrc=True`: 16 sizes from 1/64 to twice `memory`) and `report`, the
/// report `klab replay --json -` prints.
#[pyfunction]
#[pyo3(
    signature = (trace, policy="lru", memory=None, unit=None, format=None, *, ignore_size=false, block_size=None, mrc=false, threads=None, sample=None, opt=true),
    text_signature = "(trace, policy='lru', memory='128MiB', unit=None, format=None, *, ignore_size=False, block_size=None, mrc=False, threads=None, sample=None, opt=True)"
)]
#[allow(clippy::too_many_arguments)]
fn replay(
    py: Python<'_>,
    trace: PathBuf,
    policy: &str,
    memory: Option<&Bound<'_, PyAny>>,
    unit: Option<String>,
    format: Option<String>,
    ignore_size: bool,
    block_size: Option<&Bound<'_, PyAny>>,
    mrc: bool,
    threads: Option<usize>,
    sample: Option<f64>,
    opt: bool,
) -> PyResult<Py<PyAny>> {
    let memory = match memory {
        Some(m) => size(m, "memory")?,
        None => Size::Text("128MiB".into()),
    };
    let args = TraceArgs {
        trace,
        unit,
        format,
        ignore_size,
        block_size: block_size.map(|b| size(b, "block_size")).transpose()?,
        threads,
        sample,
        opt,
    };
    let policy = policy.to_owned();
    let r = py.detach(|| crate::replay(&args, &policy, &memory, mrc));
    to_py(py, &r.map_err(|e| raise(py, e))?)
}

/// Every policy at every size (a miss-ratio curve per policy): a list of
/// dicts, one per (policy, size), policy-major, each with the counts
/// `replay` returns. `policies` is a name or a list of names; `sizes` ints
/// or sizes such as `"64MiB"`. The cells run on `threads` threads.
#[pyfunction]
#[pyo3(signature = (trace, policies, sizes, *, unit=None, format=None, ignore_size=false, block_size=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn mrc(
    py: Python<'_>,
    trace: PathBuf,
    policies: &Bound<'_, PyAny>,
    sizes: &Bound<'_, PyAny>,
    unit: Option<String>,
    format: Option<String>,
    ignore_size: bool,
    block_size: Option<&Bound<'_, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Py<PyAny>> {
    let policies: Vec<String> = match policies.cast::<PyString>() {
        Ok(s) => vec![s.to_cow()?.into_owned()],
        Err(_) => policies.extract()?,
    };
    let sizes: Vec<Size> = sizes
        .try_iter()?
        .map(|s| size(&s?, "sizes"))
        .collect::<PyResult<_>>()?;
    let args = TraceArgs {
        trace,
        unit,
        format,
        ignore_size,
        block_size: block_size.map(|b| size(b, "block_size")).transpose()?,
        threads,
        sample: None,
        opt: false,
    };
    let r = py.detach(|| crate::mrc(&args, &policies, &sizes));
    to_py(py, &Value::Array(r.map_err(|e| raise(py, e))?))
}

/// The policy names `replay` and `mrc` take.
#[pyfunction]
fn policies() -> Vec<&'static str> {
    crate::policies()
}

/// Every experiment: a list of dicts with `name`, `seed_page`, `claim`,
/// `inputs` (the keywords `run` takes for it) and `hibernates`.
#[pyfunction]
fn experiments(py: Python<'_>) -> PyResult<Py<PyAny>> {
    to_py(py, &Value::Array(crate::experiments()))
}

/// Runs an experiment, as `klab run NAME` does, and returns its report as
/// a dict (as in `report.json`: `experiment`, `config`, `tables`,
/// `series`, `verdict`, `host`). Inputs are keywords: `trace=`, `pcap=`,
/// `scenario=`, `repo=`, `range=`, `employers=`.
#[pyfunction]
#[pyo3(signature = (name, seed=1, quick=false, **inputs))]
fn run(
    py: Python<'_>,
    name: &str,
    seed: u64,
    quick: bool,
    inputs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let mut given = Vec::new();
    if let Some(d) = inputs {
        for (k, v) in d.iter() {
            let keyword: String = k.extract()?;
            if !INPUT_KEYWORDS.contains(&keyword.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "run() got an unexpected keyword argument '{keyword}'; inputs: {}",
                    INPUT_KEYWORDS.join(", ")
                )));
            }
            let value = if keyword == "range" {
                v.extract::<String>()?
            } else {
                v.extract::<PathBuf>()?.display().to_string()
            };
            given.push(Input { keyword, value });
        }
    }
    let name = name.to_owned();
    let r = py.detach(|| crate::run(&name, seed, quick, &given));
    to_py(py, &r.map_err(|e| raise(py, e))?)
}
