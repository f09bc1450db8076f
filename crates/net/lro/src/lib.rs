//! klab-lro: large receive offload as inet_lro did it (Linux 2.6.24), and
//! GRO beside it, over real frames.
//!
//! Mirrors net/ipv4/inet_lro.c and include/linux/inet_lro.h (the LRO
//! manager, its descriptors, `lro_receive_skb`, `lro_receive_frags`,
//! `lro_flush_all`, `lro_flush_pkt`), and for comparison the GRO rules of
//! net/core/gro.c, net/ipv4/af_inet.c and net/ipv4/tcp_offload.c. Seed:
//! 000_2fa08a6962ebae3f.txt ("Large receive offload", LWN, August 2007).
//!
//! The page's claim: a receiver that merges the segments of a TCP stream
//! before the stack sees them cuts the per-packet work of the stack, with
//! no help from the hardware; the price is descriptors (`max_desc`, found
//! by a linear search) and packets held back until `max_aggr` is reached
//! or the driver flushes at the end of its poll.
//!
//! # Layout
//!
//! ```text
//!  bytes ──► wire::parse ──► Segment (checked view: offsets + fields)
//!                               │
//!             ┌─────────────────┴──────────────────┐
//!             ▼                                    ▼
//!   lro::LroMgr (inet_lro rules)          gro::GroMgr (GRO rules)
//!             │  Skb::{Frame, Frags, Aggregate}    │
//!             └──────────────► stack ◄─────────────┘
//!
//!  capture: pcap/pcapng ⇄ Capture      napi: a driver's poll loop over a capture
//!  stream:  per-flow payload bytes, to prove nothing was lost, duplicated or reordered
//! ```
//!
//! Nothing here is modelled: the managers do the real work on real frames
//! (from a capture or from any source of buffers), and the merged packets
//! are valid on the wire (lengths, IPv4 header checksum and TCP checksum
//! rewritten). What a NIC did (checksum verification) is a knob,
//! [`lro::Checksum`]. The NAPI poll loop that decides when `flush_all`
//! runs is modelled from capture timestamps ([`napi`]).
//!
//! # Example: live frames
//!
//! Any buffer type that derefs to bytes works: here owned `Vec<u8>` frames
//! as a socket or a ring would hand them over, one poll of 64, then the
//! end-of-poll flush.
//!
//! ```
//! use klab_lro::{LinkType, LroConfig, LroMgr, Skb};
//! use klab_lro::workload::{BulkSpec, bulk};
//!
//! let frames = bulk(&BulkSpec { flows: 2, segs_per_flow: 32, ..BulkSpec::default() });
//! let mut lro: LroMgr<Vec<u8>> = LroMgr::new(LroConfig::default(), LinkType::Ethernet).unwrap();
//! let mut up = Vec::new();
//! let mut stack = |skb: Skb<Vec<u8>>| up.push(skb.segs());
//! for f in frames {
//!     lro.receive_skb(f.data, &mut stack);
//! }
//! lro.flush_all(&mut stack);
//! // Two flows in 8-segment trains: 64 segments reach the stack as 2 packets.
//! assert_eq!(up, vec![32, 32]);
//! assert_eq!(lro.stats().aggregated, 64);
//! ```
#![forbid(unsafe_code)]

pub mod capture;
pub mod csum;
pub mod gro;
pub mod lro;
pub mod napi;
pub mod skb;
pub mod stats;
pub mod stream;
pub mod wire;
pub mod workload;

#[cfg(test)]
mod testutil;

pub use capture::{Capture, CaptureError, CaptureFormat, Packet};
pub use gro::{GroConfig, GroMgr};
pub use lro::{Checksum, Lookup, LroConfig, LroMgr};
pub use napi::{Engine, Mode, NapiConfig, Replay, Tagged};
pub use skb::{Aggregate, Frag, Skb};
pub use stats::{FlushReason, PassReason, Stats};
pub use wire::{LinkType, Segment};
