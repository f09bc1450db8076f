//! Timing for the benchmarks: wall time, and the calling thread's CPU time
//! where the kernel exposes it (`/proc/thread-self/schedstat`, the
//! scheduler's `sum_exec_runtime`). On a machine shared with other work,
//! CPU time is disturbed far less than wall time (a preempted thread's wall
//! clock runs on, its CPU clock stops), so a benchmark that compares two
//! single-threaded loops compares their CPU times when it can.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The calling thread's CPU time in ns, when the kernel exposes it.
pub(crate) fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How long one run of a closure took.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Elapsed {
    /// Wall time, seconds.
    pub wall_s: f64,
    /// The thread's CPU time, seconds, when known.
    pub cpu_s: Option<f64>,
}

impl Elapsed {
    /// CPU time when known, else wall time.
    pub fn best_known_s(&self) -> f64 {
        self.cpu_s.unwrap_or(self.wall_s)
    }
}

/// Runs `f` once and times it.
pub(crate) fn time<T>(f: impl FnOnce() -> T) -> (T, Elapsed) {
    let c0 = cpu_ns();
    let t = Instant::now();
    let out = std::hint::black_box(f());
    let wall_s = t.elapsed().as_secs_f64();
    let cpu_s = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    (out, Elapsed { wall_s, cpu_s })
}

/// The host's logical CPUs, as this process sees them.
pub(crate) fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_preferred_when_known() {
        let both = Elapsed {
            wall_s: 2.0,
            cpu_s: Some(0.5),
        };
        assert_eq!(both.best_known_s(), 0.5);
        let wall = Elapsed {
            wall_s: 2.0,
            cpu_s: None,
        };
        assert_eq!(wall.best_known_s(), 2.0);
    }

    #[test]
    fn time_returns_the_closures_value() {
        let (sum, e) = time(|| (0..1000u64).sum::<u64>());
        assert_eq!(sum, 999 * 1000 / 2);
        assert!(e.wall_s.is_finite() && e.cpu_s.is_none_or(f64::is_finite));
    }
}
