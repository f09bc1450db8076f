//! A machine driven by a stream of accesses, with the counts every caller
//! keeps: the one loop behind `klab replay`'s kernel rules, the
//! `workingset` and `fidelity` experiments and the memory-controller
//! scenario runner.
//!
//! The machine's own statistics (`/proc/vmstat`: faults, refaults,
//! activations, steals) stay in [`Machine::stat`]; a [`Drive`] adds what
//! only the driver knows: which accesses the workload measures, the hit
//! ratio per window of accesses, each access's outcome when asked, and
//! requests of several pages that hit only when every page does.
//!
//! A `Drive` serializes with its machine, so a hibernation image can hold
//! a run between any two accesses.

use serde::{Deserialize, Serialize};

use crate::{Access, Machine, MachineConfig, Outcome};

/// Accesses, hits and failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Accesses made.
    pub accesses: u64,
    /// Accesses that found their page resident.
    pub hits: u64,
    /// Accesses that did not happen or failed: out of memory, the task
    /// killed, a memory failure's SIGBUS, a panicked machine.
    pub failed: u64,
}

impl Tally {
    fn add(&mut self, out: Outcome) {
        self.accesses += 1;
        self.hits += u64::from(out == Outcome::Hit);
        self.failed += u64::from(out.failed());
    }

    /// Accesses that were not hits.
    pub fn misses(&self) -> u64 {
        self.accesses - self.hits
    }

    /// Accesses that happened.
    pub fn completed(&self) -> u64 {
        self.accesses - self.failed
    }

    /// `hits / accesses`; `None` before the first access.
    pub fn hit_ratio(&self) -> Option<f64> {
        (self.accesses > 0).then(|| self.hits as f64 / self.accesses as f64)
    }
}

impl Outcome {
    /// The access did not happen or failed (see [`Tally::failed`]).
    pub fn failed(self) -> bool {
        matches!(
            self,
            Outcome::OutOfMemory | Outcome::Killed | Outcome::SigBus { .. } | Outcome::Panic
        )
    }
}

/// A machine and the counts of the accesses driven through it.
#[derive(Serialize, Deserialize)]
pub struct Drive {
    m: Machine,
    /// Every access.
    all: Tally,
    /// The accesses the caller measures (all of them unless it says).
    measured: Tally,
    /// Window length in accesses, for the per-window hit ratio.
    window: Option<u64>,
    /// The measured accesses of the current window.
    win: Tally,
    /// `[window number, hit ratio of its measured accesses]` (NaN for a
    /// window without one).
    per_window: Vec<[f64; 2]>,
    /// Each access's hit, when recording.
    hits: Option<Vec<bool>>,
}

impl Drive {
    /// A fresh machine of `cfg`.
    ///
    /// # Errors
    /// The configuration the machine refuses, in its words.
    pub fn new(cfg: MachineConfig) -> Result<Drive, String> {
        Machine::new(cfg).map(Drive::on)
    }

    /// Drives a machine already set up (containers, reserved pages, ...).
    pub fn on(m: Machine) -> Drive {
        Drive {
            m,
            all: Tally::default(),
            measured: Tally::default(),
            window: None,
            win: Tally::default(),
            per_window: Vec::new(),
            hits: None,
        }
    }

    /// Records the hit ratio of every `n` accesses ([`Drive::per_window`]).
    pub fn windows(mut self, n: u64) -> Drive {
        self.window = Some(n.max(1));
        self
    }

    /// Records each access's hit ([`Drive::hits`]).
    pub fn recording_hits(mut self) -> Drive {
        self.hits = Some(Vec::new());
        self
    }

    /// One access, measured.
    pub fn access(&mut self, a: Access) -> Outcome {
        self.access_as(a, true)
    }

    /// One access; `measured` says whether it counts in [`Drive::measured`]
    /// and in the windows (a workload's warm-up or background traffic does
    /// not).
    pub fn access_as(&mut self, a: Access, measured: bool) -> Outcome {
        let out = self.m.access(a);
        self.all.add(out);
        if measured {
            self.measured.add(out);
            self.win.add(out);
        }
        if let Some(h) = &mut self.hits {
            h.push(out == Outcome::Hit);
        }
        if let Some(n) = self.window
            && self.all.accesses.is_multiple_of(n)
        {
            let ratio = self.win.hit_ratio().unwrap_or(f64::NAN);
            self.per_window
                .push([(self.all.accesses / n) as f64, ratio]);
            self.win = Tally::default();
        }
        out
    }

    /// One request of several pages (a block trace's read of `size`
    /// bytes): every access is made; the request hits when each of them
    /// did.
    pub fn request(&mut self, accesses: impl IntoIterator<Item = Access>) -> bool {
        let mut all_hit = true;
        for a in accesses {
            all_hit &= self.access(a) == Outcome::Hit;
        }
        all_hit
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.m
    }

    /// The machine, to change its setup between accesses (limits, tasks).
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.m
    }

    /// Every access so far.
    pub fn all(&self) -> Tally {
        self.all
    }

    /// The measured accesses so far.
    pub fn measured(&self) -> Tally {
        self.measured
    }

    /// The hit ratio of each full window so far.
    pub fn per_window(&self) -> &[[f64; 2]] {
        &self.per_window
    }

    /// Each access's hit, if recording.
    pub fn hits(&self) -> Option<&[bool]> {
        self.hits.as_deref()
    }

    /// The machine and the per-access hits, at the end of a run.
    pub fn finish(self) -> (Machine, Option<Vec<bool>>) {
        (self.m, self.hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_mm_policy::LruBalance;

    #[test]
    fn the_drive_counts_measured_accesses_windows_and_requests() {
        // Two frames: pages 0 and 1 fit, page 2 evicts one.
        let mut d = Drive::new(MachineConfig::new(2, LruBalance::Classic))
            .unwrap()
            .windows(3)
            .recording_hits();
        let r = |p| Access::read(0, p);
        // A warm-up access, not measured: a miss.
        assert_eq!(d.access_as(r(0), false), Outcome::Miss);
        // Measured: hit, miss, hit (window 1 ends after the 3rd access:
        // its measured accesses were hit, miss: 1 of 2).
        assert_eq!(d.access(r(0)), Outcome::Hit);
        assert_eq!(d.access(r(1)), Outcome::Miss);
        assert_eq!(d.per_window(), &[[1.0, 0.5]]);
        assert!(d.request([r(0), r(1)]), "both resident: a hit");
        assert!(!d.request([r(0), r(2)]), "page 2 is new: a miss");
        assert_eq!(
            d.all(),
            Tally {
                accesses: 7,
                hits: 4,
                failed: 0
            }
        );
        assert_eq!(d.measured().accesses, 6);
        assert_eq!(d.measured().hits, 4);
        // Window 2 (accesses 4-6): hit, hit, hit.
        assert_eq!(d.per_window(), &[[1.0, 0.5], [2.0, 1.0]]);
        assert_eq!(
            d.hits().unwrap(),
            &[false, true, false, true, true, true, false]
        );
        assert_eq!(d.machine().stat().accesses, 7);
        assert_eq!(d.all().misses(), 3);
        assert_eq!(d.all().completed(), 7);
    }
}
