//! The model's file layer: the user-space interfaces of seeds 001, 002 and
//! 003 in virtual time.
//!
//! * [`pipe`]: pipes with packet mode, over `klab_uapi::pipe::PipeRing`;
//! * [`autofs`]: the autofs v5 packet, the daemons that read it, and the
//!   kernel fixes of 2012;
//! * [`file`](mod@file): descriptor tables, `O_NOSTD` and the user-space remedies,
//!   counting system calls;
//! * [`sysfs`]: a sysfs of model objects, open files across removal, with
//!   and without active references (`klab_revocable`).
//!
//! These modules stand alone: they take time (`Tick`) and randomness as
//! arguments and depend on no machine state.

pub mod autofs;
pub mod file;
pub mod pipe;
pub mod sysfs;
