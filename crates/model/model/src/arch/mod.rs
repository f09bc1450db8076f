//! arch/: what differs between the machines a model kernel boots on, and
//! how it reaches privileged operations (seeds 001 and 004; `docs/REFERENCE.md`
//! §14).
//!
//! * [`platform`]: `x86_init` / `x86_platform` (Thomas Gleixner's
//!   `platform_setup`, 2.6.32): boot hooks for a standard PC, a Moorestown
//!   handset without legacy devices and a virtualised guest, chosen at run
//!   time by one kernel.
//! * [`paravirt`]: the paravirt-ops table of the VMI page (interrupt flag,
//!   page-table updates, MSR and control-register writes, timer events),
//!   bound at boot to a hypervisor's ROM or to native instructions, and
//!   counted in the model machine's memory-management paths. The same table
//!   called and timed on the host is the `klab-paravirt` crate.

pub mod paravirt;
pub mod platform;
