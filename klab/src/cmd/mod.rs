//! One module per subcommand.

pub(crate) mod archmerge;
pub(crate) mod devstats;
pub(crate) mod fidelity;
pub(crate) mod list;
pub(crate) mod lro;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod tcp_repair;
