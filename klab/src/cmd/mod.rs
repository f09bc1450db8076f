//! One module per subcommand.

pub(crate) mod archmerge;
pub(crate) mod devstats;
pub(crate) mod list;
pub(crate) mod run;
