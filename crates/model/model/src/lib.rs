//! The klab machine model: a deterministic, virtual-time machine built from
//! klab's libraries, for the mechanisms the host cannot show for real (4096
//! CPUs, failing memory, a 2007 page cache).
//!
//! # Design
//!
//! A machine is built from a configuration and driven by a workload. Two
//! rules make every number it produces reproducible bit for bit:
//!
//! * **Time is an input.** The model never reads a wall clock. It advances a
//!   virtual clock ([`clock::Clock`]) one event at a time, and everything
//!   that depends on "when" takes a [`clock::Tick`].
//! * **Randomness is an input.** Every random choice comes from a generator
//!   made by [`rng::seeded`] from the run's seed and a stream number, so two
//!   parts of a run never share (and perturb) one generator.
//!
//! Iteration order is the third input that can leak into results: the model
//! keeps ordered maps (`BTreeMap`) wherever order reaches an output.
//!
//! The model holds no algorithm a library could own: the radix tree, the
//! slab allocator and the replacement policies live in their own crates and
//! the model composes them (see `docs/ARCHITECTURE.md`).
#![forbid(unsafe_code)]

pub mod arch;
pub mod clock;
pub mod drive;
pub mod fs;
pub mod hibernate;
pub mod kernel;
pub mod machine;
mod machine_check;
pub mod mm;
pub mod rng;

pub use machine::{Access, AccessKind, Machine, MachineConfig, Outcome, ShadowLimit};

#[cfg(test)]
mod hwpoison_tests;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod memcg_tests;
#[cfg(test)]
mod slab_tests;
