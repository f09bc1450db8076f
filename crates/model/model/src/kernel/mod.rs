//! kernel/: tasks and their lists, stop_machine, the boot-time kernel
//! threads, and the workqueue thread lifecycle, as deterministic models.
//!
//! * [`task`]: tasks, pids (`pid_max`), parent/child lists, exit,
//!   reparenting to init, `wait()` and what it walks (kernel/fork.c,
//!   kernel/exit.c, kernel/pid.c of 2.6.20), with the zombie placements
//!   seed 003 proposes.
//! * [`stop_machine`]: the state machine that holds every CPU while a
//!   module is linked in (kernel/stop_machine.c).
//! * [`boot`]: which kernel threads a machine boots, whose children they
//!   are (2.6.20's keventd-created kthreads, or kthreadd), and what a
//!   module load costs init.
//! * [`power`]: hibernation as 2.6.23's swsusp and TuxOnIce did it (the
//!   freezer, freeing memory, the atomic copy, the image on a swap device,
//!   resume), and the "suspend within 15 minutes of idle" rule (seeds 000,
//!   001).
//! * [`workqueue`]: per-CPU, single-threaded and lazy workqueue threads in
//!   virtual time, driven by the rules of `klab_workqueue::rules` (seed 001).
//!
//! Each is self-contained: a value built from a configuration, stepped by
//! its caller, with no wall clock and no shared machine state.

pub mod boot;
pub mod power;
pub mod stop_machine;
pub mod task;
pub mod workqueue;
