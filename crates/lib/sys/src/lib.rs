//! Thin, safe wrappers for the few Linux system calls and socket options
//! that no well-kept crate (rustix, nix) offers, such as the TCP_REPAIR
//! family.
//!
//! This is one of the two crates where `unsafe` may live (the other is
//! `klab-slab`). Rules: every `unsafe` block carries a `// SAFETY:`
//! comment; every wrapper validates its arguments and returns
//! `std::io::Result`, with the kernel's errno preserved; nothing here keeps
//! state. Check rustix and nix first: a wrapper belongs here only when
//! neither has the call.
//!
//! The crate is exempt from Miri (its functions are system calls, which
//! Miri cannot run); its tests run for real on the host.

pub mod cachestat;
pub mod listen_fd;
pub mod loop_dev;
pub mod page_worker;
pub mod residency;
pub mod stdio;
pub mod tcp;
