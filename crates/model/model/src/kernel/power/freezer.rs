//! The freezer: every task stopped at a safe point before the image is
//! made, and started again after it (or after a failed attempt).
//!
//! Mirrors kernel/power/process.c of 2.6.23-2.6.24 (the 2.6.24 file read):
//!
//! ```text
//!  freeze_processes()
//!    try_to_freeze_tasks(FREEZER_USER_SPACE)      user tasks (they have an mm)
//!    try_to_freeze_tasks(FREEZER_KERNEL_THREADS)  the freezable kernel threads
//!
//!  try_to_freeze_tasks(phase):
//!    end_time = jiffies + TIMEOUT                 TIMEOUT = 20 * HZ
//!    do {
//!      todo = 0
//!      for each task of the phase, not frozen, not PF_NOFREEZE:
//!        freeze_task(p): set TIF_FREEZE; a user task gets a fake signal
//!          (signal_wake_up), a kernel thread wake_up_state(TASK_INTERRUPTIBLE)
//!        todo++
//!      yield()
//!      if (time_after(jiffies, end_time)) break
//!    } while (todo)
//!    todo? cancel_freezing() of the rest, -EBUSY ("Freezing of tasks
//!          failed after %d.%02d seconds (%d tasks refusing to freeze)")
//! ```
//!
//! A task freezes only itself, in `refrigerator()`, called from
//! `try_to_freeze()` at a safe point: on its way back to user space with a
//! signal pending, or where a freezable kernel thread's loop calls it. So,
//! from the moment the request is sent:
//!
//! * a **running** task freezes at its next safe point
//!   ([`TaskState::Running`] says how often it passes one);
//! * a task in **interruptible** sleep is woken by the fake signal and
//!   freezes at once;
//! * a task in **uninterruptible** sleep (`D` state: waiting for I/O, an NFS
//!   server, a driver) is not woken by a signal: it freezes when its wait
//!   ends, and if the wait outlasts `TIMEOUT`, the attempt fails.
//!
//! Time is virtual: a pass of the loop sees a task frozen if its freeze time
//! is at or before the pass; `yield()` lets the other tasks run for
//! [`Freezer::pass_ns`] (a klab choice: one tick of a `HZ = 250` kernel, the
//! common desktop setting of 2007) before the next pass. A failed attempt is
//! followed by `thaw_processes()` (kernel/power/disk.c `hibernate()` does so
//! on the error path).
//!
//! Invariants: a task is frozen only if it is freezable and its phase ran
//! until it froze; after [`thaw_processes`] no task is frozen.

use serde::{Deserialize, Serialize};

/// kernel/power/process.c `TIMEOUT`: `20 * HZ`, 20 seconds.
pub const FREEZE_TIMEOUT_NS: u64 = 20_000_000_000;

/// One tick of a `HZ = 250` kernel: the model's length of a `yield()`
/// between two passes of the freezer's loop.
pub const HZ_250_TICK_NS: u64 = 4_000_000;

/// What a task is doing when the freeze request reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Runnable: it passes a safe point (a return to user space, a
    /// `try_to_freeze()` in a kernel thread's loop) every this many ns.
    Running {
        /// The longest stretch without a safe point.
        safe_point_every_ns: u64,
    },
    /// `TASK_INTERRUPTIBLE`: the fake signal (or wake-up) brings it to a
    /// safe point at once.
    Interruptible,
    /// `TASK_UNINTERRUPTIBLE` (`D`): asleep until its wait ends, at
    /// `wakes_at_ns` from the start of the attempt (`None`: not within any
    /// time the model runs, a hung NFS server or a stuck driver).
    Uninterruptible {
        /// When the wait ends.
        wakes_at_ns: Option<u64>,
    },
}

/// A task as the freezer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezerTask {
    /// `comm`.
    pub name: String,
    /// A user-space task (it has its own mm); otherwise a kernel thread.
    pub user: bool,
    /// Kernel threads are frozen only if freezable (`set_freezable()`;
    /// the others carry `PF_NOFREEZE`). User tasks always are.
    pub freezable: bool,
    /// What it is doing.
    pub state: TaskState,
    /// In the refrigerator (`PF_FROZEN`).
    pub frozen: bool,
}

impl FreezerTask {
    /// A user task in `state`.
    pub fn user(name: &str, state: TaskState) -> Self {
        FreezerTask {
            name: name.into(),
            user: true,
            freezable: true,
            state,
            frozen: false,
        }
    }

    /// A kernel thread in `state`, freezable or `PF_NOFREEZE`.
    pub fn kthread(name: &str, freezable: bool, state: TaskState) -> Self {
        FreezerTask {
            name: name.into(),
            user: false,
            freezable,
            state,
            frozen: false,
        }
    }

    /// When the task reaches its safe point, given the request at
    /// `sent_ns`; `None`: never.
    fn freezes_at(&self, sent_ns: u64) -> Option<u64> {
        match self.state {
            TaskState::Running {
                safe_point_every_ns,
            } => Some(sent_ns + safe_point_every_ns),
            TaskState::Interruptible => Some(sent_ns),
            TaskState::Uninterruptible { wakes_at_ns } => wakes_at_ns.map(|w| w.max(sent_ns)),
        }
    }
}

/// The freezer's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freezer {
    /// Virtual time of one `yield()` between passes.
    pub pass_ns: u64,
    /// `TIMEOUT`.
    pub timeout_ns: u64,
}

impl Default for Freezer {
    fn default() -> Self {
        Freezer {
            pass_ns: HZ_250_TICK_NS,
            timeout_ns: FREEZE_TIMEOUT_NS,
        }
    }
}

/// A freeze attempt that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    /// Time from the start of `freeze_processes()` to its return.
    pub elapsed_ns: u64,
    /// Passes of the loop, both phases.
    pub passes: u64,
    /// Tasks frozen.
    pub frozen: u64,
}

/// A freeze attempt that failed: `-EBUSY`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "freezing of {phase} failed after {elapsed_ns} ns ({} tasks refusing to freeze: {})",
    refusing.len(),
    refusing.join(", ")
)]
pub struct FreezeFailed {
    /// `"user space processes"` or `"remaining freezable tasks"`.
    pub phase: String,
    /// Time from the start of `freeze_processes()` to the failure.
    pub elapsed_ns: u64,
    /// Passes of the loop, both phases.
    pub passes: u64,
    /// The tasks that did not reach a safe point.
    pub refusing: Vec<String>,
}

impl Freezer {
    /// `freeze_processes()`: user space, then the freezable kernel threads.
    /// On failure the tasks already frozen stay frozen (the caller thaws,
    /// as the kernel's caller does).
    ///
    /// # Errors
    /// [`FreezeFailed`] when a task has not frozen by `TIMEOUT`.
    pub fn freeze_processes(&self, tasks: &mut [FreezerTask]) -> Result<Frozen, FreezeFailed> {
        let mut now = 0;
        let mut passes = 0;
        for (user, phase) in [
            (true, "user space processes"),
            (false, "remaining freezable tasks"),
        ] {
            let todo = self.try_to_freeze_tasks(tasks, user, &mut now, &mut passes);
            if !todo.is_empty() {
                return Err(FreezeFailed {
                    phase: phase.into(),
                    elapsed_ns: now,
                    passes,
                    refusing: todo,
                });
            }
        }
        Ok(Frozen {
            elapsed_ns: now,
            passes,
            frozen: tasks.iter().filter(|t| t.frozen).count() as u64,
        })
    }

    /// `try_to_freeze_tasks()` of one phase from `*now`; returns the names
    /// of the tasks still not frozen when the loop ended.
    fn try_to_freeze_tasks(
        &self,
        tasks: &mut [FreezerTask],
        user: bool,
        now: &mut u64,
        passes: &mut u64,
    ) -> Vec<String> {
        let start = *now;
        let end = start + self.timeout_ns;
        // The first pass sends every request; a task's freeze time counts
        // from it.
        let due: Vec<Option<u64>> = tasks
            .iter()
            .map(|t| {
                (t.user == user && t.freezable && !t.frozen)
                    .then(|| t.freezes_at(start))
                    .flatten()
            })
            .collect();
        loop {
            *passes += 1;
            let mut todo = 0;
            for (t, due) in tasks.iter_mut().zip(&due) {
                if t.user != user || !t.freezable || t.frozen {
                    continue;
                }
                match due {
                    Some(at) if *at <= *now => t.frozen = true,
                    _ => todo += 1,
                }
            }
            // yield()
            *now += self.pass_ns;
            if *now > end || todo == 0 {
                break;
            }
        }
        // cancel_freezing() of the rest.
        tasks
            .iter()
            .filter(|t| t.user == user && t.freezable && !t.frozen)
            .map(|t| t.name.clone())
            .collect()
    }
}

/// `thaw_processes()`: kernel threads, then user tasks, out of the
/// refrigerator. Returns how many were thawed.
pub fn thaw_processes(tasks: &mut [FreezerTask]) -> u64 {
    let mut n = 0;
    for user in [false, true] {
        for t in tasks.iter_mut().filter(|t| t.user == user && t.frozen) {
            t.frozen = false;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn desktop() -> Vec<FreezerTask> {
        vec![
            FreezerTask::user(
                "firefox",
                TaskState::Running {
                    safe_point_every_ns: MS,
                },
            ),
            FreezerTask::user("bash", TaskState::Interruptible),
            FreezerTask::kthread("kswapd0", true, TaskState::Interruptible),
            FreezerTask::kthread(
                "ksoftirqd/0",
                false,
                TaskState::Running {
                    safe_point_every_ns: MS,
                },
            ),
        ]
    }

    #[test]
    fn running_and_sleeping_tasks_freeze_at_their_safe_points_within_a_pass() {
        let mut tasks = desktop();
        let f = Freezer::default().freeze_processes(&mut tasks).unwrap();
        // User phase: pass 1 at 0 finds firefox due at 1 ms (todo 1; bash,
        // woken by the fake signal, is frozen); yield to 4 ms; pass 2 finds
        // it frozen; yield to 8 ms. Kernel phase: pass 3 at 8 ms freezes
        // kswapd0; yield to 12 ms. ksoftirqd is PF_NOFREEZE.
        assert_eq!(
            f,
            Frozen {
                elapsed_ns: 12 * MS,
                passes: 3,
                frozen: 3
            }
        );
        assert!(!tasks[3].frozen);
        assert_eq!(thaw_processes(&mut tasks), 3);
        assert!(tasks.iter().all(|t| !t.frozen));
    }

    #[test]
    fn a_task_in_uninterruptible_sleep_fails_the_attempt_after_the_timeout() {
        let mut tasks = desktop();
        tasks.push(FreezerTask::user(
            "nfs-reader",
            TaskState::Uninterruptible { wakes_at_ns: None },
        ));
        let e = Freezer::default().freeze_processes(&mut tasks).unwrap_err();
        // Passes at 0, 4 ms, ..., k * 4 ms; the loop breaks once the clock,
        // after a yield, is past 20 s: (k + 1) * 4 ms > 20 s at k + 1 = 5001.
        assert_eq!(e.elapsed_ns, 20_004 * MS);
        assert_eq!(e.passes, 5001);
        assert_eq!(e.refusing, vec!["nfs-reader".to_string()]);
        assert_eq!(e.phase, "user space processes");
        // The others froze; the caller thaws them.
        assert_eq!(thaw_processes(&mut tasks), 2);
    }

    #[test]
    fn a_d_state_task_whose_io_completes_before_the_timeout_freezes() {
        let mut tasks = vec![FreezerTask::user(
            "dd",
            TaskState::Uninterruptible {
                wakes_at_ns: Some(3_001 * MS),
            },
        )];
        let f = Freezer::default().freeze_processes(&mut tasks).unwrap();
        // Frozen at the first pass at or after 3.001 s: 3.004 s (pass 752),
        // then a yield, then the empty kernel phase's pass and yield.
        assert_eq!(f.elapsed_ns, 3_012 * MS);
        assert_eq!(f.passes, 753);
    }
}
