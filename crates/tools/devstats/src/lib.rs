//! Development statistics from git history, counted the way LWN's "who
//! wrote this kernel" articles count them (seed 001, "Development
//! statistics for 2.6.31").
//!
//! Mirrors gitdm, the "git data miner" (Jonathan Corbet; `gitdm`,
//! `database.py`, `ConfigFile.py`, `patterns.py`), on top of git's own
//! numbers: non-merge changesets as `git rev-list --no-merges`, developers
//! as `git shortlog -sn --no-merges` (mailmapped names), lines as
//! `git log --numstat` (renames detected as git's diffcore-rename.c does).
#![forbid(unsafe_code)]

pub mod date;
pub mod employers;
pub mod error;
pub mod numstat;
pub mod rename;
pub mod trailer;
pub mod walk;
pub mod xdiff;
pub mod stats;

pub use error::{DevstatsError, EmployerMapError, TrailerError};
