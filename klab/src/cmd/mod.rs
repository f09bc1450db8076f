//! One module per subcommand.

pub(crate) mod list;
pub(crate) mod run;
pub(crate) mod tcp_repair;
