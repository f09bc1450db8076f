//! `stop_machine()`: run a function while every CPU is held, the way
//! module loading linked a module in 2.6.20 (kernel/stop_machine.c,
//! `stop_machine_run()`, `stop_machine()`, `stopmachine()`).
//!
//! ```text
//!   caller CPU c                    every other CPU i (a new thread each call)
//!   ─────────────                   ─────────────────────────────────────────
//!   create stopmachine/i  ───────►  spin on its CPU, ack WAITING
//!   state = PREPARE       ───────►  disable preemption, ack
//!   state = DISABLE_IRQ   ───────►  disable interrupts, ack
//!   all acked: run fn once
//!   state = EXIT          ───────►  exit
//! ```
//!
//! The controller moves to the next state only when every stopper thread
//! has acknowledged the current one, so `fn` runs exactly once, on the
//! caller's CPU, with the other `nr_cpus - 1` CPUs inside stopper threads
//! with interrupts off. In 2.6.20 the threads were created for every call
//! (`kernel_thread()` from a `kstopmachine` kthread) and exited after it;
//! from 2.6.35 (`cpu_stop`) one persistent stopper thread per CPU does the
//! same job without being created. The thread lifecycle is modelled in
//! [`super::boot`]; this module is the state machine, stepped
//! deterministically (threads acknowledge in CPU order).

/// The controller's states (`STOPMACHINE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopState {
    /// Threads created, spinning on their CPUs.
    Waiting,
    /// Preemption off everywhere.
    Prepare,
    /// Interrupts off everywhere.
    DisableIrq,
    /// The function has run; threads exit.
    Exit,
}

/// What one stop_machine run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StopRun {
    /// Stopper threads involved (one per CPU but the caller's).
    pub threads: usize,
    /// Acknowledgements received by the controller.
    pub acks: u64,
    /// Times the function ran.
    pub fn_runs: u64,
    /// CPUs held (the caller's included) when the function ran.
    pub cpus_held_at_fn: usize,
}

/// Runs `f` on CPU `caller` of an `nr_cpus`-CPU machine with every other
/// CPU held by a stopper thread. `f` is given which CPUs are held.
///
/// # Panics
/// If `caller >= nr_cpus`.
pub fn stop_machine(nr_cpus: usize, caller: usize, mut f: impl FnMut(&[bool])) -> StopRun {
    assert!(caller < nr_cpus, "caller CPU {caller} of {nr_cpus}");
    let stoppers: Vec<usize> = (0..nr_cpus).filter(|&c| c != caller).collect();
    let mut acked = vec![StopState::Waiting; nr_cpus];
    let mut held = vec![false; nr_cpus];
    held[caller] = true;
    let mut run = StopRun {
        threads: stoppers.len(),
        ..StopRun::default()
    };
    for state in [
        StopState::Waiting,
        StopState::Prepare,
        StopState::DisableIrq,
    ] {
        // Each stopper thread, on its CPU, sees the new state and acks it.
        for &cpu in &stoppers {
            acked[cpu] = state;
            held[cpu] = true;
            run.acks += 1;
        }
        debug_assert!(stoppers.iter().all(|&c| acked[c] == state));
    }
    run.cpus_held_at_fn = held.iter().filter(|h| **h).count();
    f(&held);
    run.fn_runs += 1;
    for &cpu in &stoppers {
        acked[cpu] = StopState::Exit;
        held[cpu] = false;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_runs_once_with_every_cpu_held() {
        let mut seen = Vec::new();
        let run = stop_machine(4, 2, |held| seen.push(held.to_vec()));
        assert_eq!(seen, vec![vec![true; 4]]);
        assert_eq!(
            run,
            StopRun {
                threads: 3,
                acks: 9,
                fn_runs: 1,
                cpus_held_at_fn: 4
            }
        );
    }

    #[test]
    fn a_single_cpu_needs_no_stopper_thread() {
        let run = stop_machine(1, 0, |held| assert_eq!(held, [true]));
        assert_eq!((run.threads, run.fn_runs, run.cpus_held_at_fn), (0, 1, 1));
    }
}
