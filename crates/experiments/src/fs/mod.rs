//! Files and descriptors: O_NOSTD, packet-mode pipes, sysfs active
//! references.

pub mod o_nostd;
pub mod packet_pipes;
pub mod sysfs_active;
