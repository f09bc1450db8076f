//! One module per subcommand.

pub(crate) mod list;
pub(crate) mod replay;
pub(crate) mod run;
