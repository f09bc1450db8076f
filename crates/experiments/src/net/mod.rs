//! Networking: large receive offload, TCP connection repair.

pub mod lro;
pub mod tcp_repair;
