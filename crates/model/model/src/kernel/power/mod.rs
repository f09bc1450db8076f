//! Power management: hibernation as the kernel did it, and the
//! automatic-suspend rule.
//!
//! Seed 000_2fa08a6962ebae3f.txt points at Rafael Wysocki's status report
//! on suspend and hibernation in 2.6.23; seed 001_9748f8e50c4ab156.txt at
//! TuxOnIce, the out-of-tree hibernation with "a number of nice features
//! which are not available with the mainstream version". The model has
//! both, on the same machine and in virtual time:
//!
//! * [`freezer`]: kernel/power/process.c, tasks stopped at safe points, a
//!   task that cannot reach one failing the attempt after `TIMEOUT`;
//! * [`swsusp`]: kernel/power/swsusp.c, snapshot.c, swap.c and
//!   mm/vmscan.c `shrink_all_memory()`: memory freed until the image fits,
//!   the atomic copy, the image written to swap, read back at resume;
//! * [`tuxonice`]: pageset 2 (the LRU pages) saved in place, pageset 1
//!   copied, every page compressed;
//! * [`device`]: the swap device's bandwidth, and the real bytes the
//!   model's pages are given so that compression is measured.
//!
//! # The 15-minute rule
//!
//! The seed also quotes Len Brown on the Energy Star rule: "systems which
//! can not automatically go into suspend within 15 minutes of idle can
//! _not_ earn a sticker". [`IdleMonitor`] applies that rule to a model
//! machine: the machine is fed its virtual time in steps,
//! each *busy* (it ran a task's access, a work item, a packet, a system
//! call) or *idle* (the clock moved with nothing runnable), and suspends
//! once an idle stretch reaches the threshold (the kernel's later
//! `/sys/power/autosleep`, 3.5, is the mechanism that acts on such a rule).
//!
//! Time is in virtual nanoseconds: the caller converts its ticks with the
//! tick length its model declares.
//!
//! Invariants ([`IdleMonitor::assert_invariants`]): `busy_ns + idle_ns =
//! now_ns`; `longest_idle_ns >= current stretch`; `suspended_at` is set iff
//! some stretch reached the threshold, at its start plus the threshold.

pub mod device;
pub mod freezer;
pub mod swsusp;
pub mod tuxonice;

#[cfg(test)]
mod tests_hibernate;

use serde::{Deserialize, Serialize};

/// The Energy Star rule: 15 minutes.
pub const SUSPEND_AFTER_NS: u64 = 15 * 60 * 1_000_000_000;

/// Idle accounting of one machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleMonitor {
    /// Idle time that triggers a suspend.
    pub threshold_ns: u64,
    /// Virtual time so far.
    pub now_ns: u64,
    /// Time busy.
    pub busy_ns: u64,
    /// Time idle.
    pub idle_ns: u64,
    /// The longest idle stretch.
    pub longest_idle_ns: u64,
    /// Idle stretches (maximal runs of idle steps).
    pub stretches: u64,
    /// Start of the current idle stretch, if idle now.
    pub idle_since_ns: Option<u64>,
    /// End of the last busy step.
    pub last_busy_ns: u64,
    /// When the machine would first have suspended.
    pub suspended_at_ns: Option<u64>,
}

impl IdleMonitor {
    /// A monitor with the given threshold.
    pub fn new(threshold_ns: u64) -> Self {
        IdleMonitor {
            threshold_ns,
            ..IdleMonitor::default()
        }
    }

    /// `ns` of work.
    pub fn busy(&mut self, ns: u64) {
        if ns == 0 {
            return;
        }
        self.idle_since_ns = None;
        self.now_ns += ns;
        self.busy_ns += ns;
        self.last_busy_ns = self.now_ns;
    }

    /// `ns` with nothing to do.
    pub fn idle(&mut self, ns: u64) {
        if ns == 0 {
            return;
        }
        let since = *self.idle_since_ns.get_or_insert_with(|| {
            self.stretches += 1;
            self.now_ns
        });
        self.now_ns += ns;
        self.idle_ns += ns;
        let stretch = self.now_ns - since;
        self.longest_idle_ns = self.longest_idle_ns.max(stretch);
        if self.suspended_at_ns.is_none() && stretch >= self.threshold_ns {
            self.suspended_at_ns = Some(since + self.threshold_ns);
        }
    }

    /// When the machine suspends: during the run if a stretch reached the
    /// threshold, else the threshold after its last work (the machine idles
    /// once the run is over).
    pub fn suspend_time_ns(&self) -> u64 {
        self.suspended_at_ns
            .unwrap_or(self.idle_since_ns.unwrap_or(self.last_busy_ns) + self.threshold_ns)
    }

    /// Checks the header's invariants.
    pub fn assert_invariants(&self) {
        assert_eq!(self.busy_ns + self.idle_ns, self.now_ns);
        if let Some(s) = self.idle_since_ns {
            assert!(self.now_ns - s <= self.longest_idle_ns);
        }
        if let Some(at) = self.suspended_at_ns {
            assert!(self.longest_idle_ns >= self.threshold_ns && at <= self.now_ns);
        } else {
            assert!(self.longest_idle_ns < self.threshold_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspends_fifteen_minutes_into_the_first_long_enough_stretch() {
        let min = 60 * 1_000_000_000u64;
        let mut m = IdleMonitor::new(SUSPEND_AFTER_NS);
        m.busy(min); // 0-1 min busy
        m.idle(10 * min); // 1-11 idle: short of 15
        m.busy(min); // 11-12
        m.idle(10 * min); // 12-22 idle
        m.idle(10 * min); // 22-32: one stretch of 20 min, reaches 15 at 27
        m.busy(min);
        m.assert_invariants();
        assert_eq!(m.stretches, 2);
        assert_eq!(m.longest_idle_ns, 20 * min);
        assert_eq!(m.suspended_at_ns, Some(27 * min));
        assert_eq!(m.suspend_time_ns(), 27 * min);
        assert_eq!((m.busy_ns, m.idle_ns), (3 * min, 30 * min));
    }

    #[test]
    fn a_machine_never_idle_long_enough_suspends_after_its_last_work() {
        let mut m = IdleMonitor::new(SUSPEND_AFTER_NS);
        m.busy(5);
        m.idle(3);
        m.busy(2);
        m.idle(4);
        m.assert_invariants();
        assert_eq!(m.suspended_at_ns, None);
        assert_eq!(m.longest_idle_ns, 4);
        assert_eq!(m.suspend_time_ns(), 10 + SUSPEND_AFTER_NS, "idle since 10");
    }
}
