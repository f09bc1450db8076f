//! Per-flow payload bytes of a packet sequence: the proof that aggregation
//! lost, duplicated and reordered nothing.
//!
//! For every TCP flow direction (addresses, ports, VLAN) the payload bytes
//! of its segments are concatenated in the order the packets appear, and
//! each segment's start is remembered as (offset in that concatenation,
//! sequence number). An aggregated sequence is faithful to its input when,
//! flow by flow, the bytes are identical and every segment start of the
//! output is a segment start of the input with the same sequence number
//! (a merged packet starts where its first segment started).
//!
//! This is stronger than TCP reassembly (which drops retransmitted bytes):
//! the stack must see exactly the bytes it would have seen, in order.

use std::collections::BTreeMap;

use crate::wire::{self, Ip, LinkType};

/// One direction of a TCP connection, as a printable key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    /// `src:port > dst:port`, with the VLAN id when tagged.
    pub name: String,
}

/// The payload of one flow direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamData {
    /// Payload bytes in packet order.
    pub bytes: Vec<u8>,
    /// (offset into `bytes`, sequence number) of each segment start.
    pub starts: Vec<(u64, u32)>,
}

/// Every flow direction of a packet sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Streams {
    /// Flows by key.
    pub flows: BTreeMap<StreamKey, StreamData>,
}

/// How an output differs from its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamDiff {
    /// A flow is in one side only.
    #[error("flow {flow}: present in the {side} only")]
    Missing {
        /// The flow.
        flow: String,
        /// "input" or "output".
        side: &'static str,
    },
    /// The payload bytes differ.
    #[error(
        "flow {flow}: payload differs at byte {offset} (input {input_len} bytes, output {output_len})"
    )]
    Bytes {
        /// The flow.
        flow: String,
        /// First differing offset.
        offset: u64,
        /// Input length.
        input_len: u64,
        /// Output length.
        output_len: u64,
    },
    /// An output segment starts where no input segment did, or with
    /// another sequence number.
    #[error("flow {flow}: output segment at byte {offset} (seq {seq}) starts no input segment")]
    Start {
        /// The flow.
        flow: String,
        /// Offset of the output segment.
        offset: u64,
        /// Its sequence number.
        seq: u32,
    },
}

fn key(seg: &wire::Segment) -> StreamKey {
    let vlan = seg
        .vlan
        .map(|t| format!(" vlan {}", t & 0x0fff))
        .unwrap_or_default();
    let name = match &seg.ip {
        Ip::V4(v4) => format!(
            "{}:{} > {}:{}{vlan}",
            std::net::Ipv4Addr::from(v4.src),
            seg.sport,
            std::net::Ipv4Addr::from(v4.dst),
            seg.dport
        ),
        Ip::V6(v6) => format!(
            "[{}]:{} > [{}]:{}{vlan}",
            std::net::Ipv6Addr::from(v6.src),
            seg.sport,
            std::net::Ipv6Addr::from(v6.dst),
            seg.dport
        ),
    };
    StreamKey { name }
}

impl Streams {
    /// The flows of a sequence of frames of link type `link`. Frames that
    /// do not parse to a TCP segment with payload are skipped.
    pub fn of<'f>(link: LinkType, frames: impl IntoIterator<Item = &'f [u8]>) -> Streams {
        let mut s = Streams::default();
        for f in frames {
            s.add(link, f);
        }
        s
    }

    /// Adds one frame.
    pub fn add(&mut self, link: LinkType, frame: &[u8]) {
        let Ok(seg) = wire::parse(link, frame) else {
            return;
        };
        let payload = seg.payload(frame);
        if payload.is_empty() {
            return;
        }
        let d = self.flows.entry(key(&seg)).or_default();
        d.starts.push((d.bytes.len() as u64, seg.seq));
        d.bytes.extend_from_slice(payload);
    }

    /// Total payload bytes over all flows.
    pub fn total_bytes(&self) -> u64 {
        self.flows.values().map(|d| d.bytes.len() as u64).sum()
    }

    /// Checks that `output` carries exactly this sequence's payloads.
    pub fn compare(&self, output: &Streams) -> Result<(), StreamDiff> {
        for k in output.flows.keys() {
            if !self.flows.contains_key(k) {
                return Err(StreamDiff::Missing {
                    flow: k.name.clone(),
                    side: "output",
                });
            }
        }
        for (k, a) in &self.flows {
            let Some(b) = output.flows.get(k) else {
                return Err(StreamDiff::Missing {
                    flow: k.name.clone(),
                    side: "input",
                });
            };
            if a.bytes != b.bytes {
                let offset = a
                    .bytes
                    .iter()
                    .zip(&b.bytes)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.bytes.len().min(b.bytes.len()));
                return Err(StreamDiff::Bytes {
                    flow: k.name.clone(),
                    offset: offset as u64,
                    input_len: a.bytes.len() as u64,
                    output_len: b.bytes.len() as u64,
                });
            }
            let input_starts: std::collections::HashSet<(u64, u32)> =
                a.starts.iter().copied().collect();
            if let Some(&(offset, seq)) = b.starts.iter().find(|s| !input_starts.contains(s)) {
                return Err(StreamDiff::Start {
                    flow: k.name.clone(),
                    offset,
                    seq,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Seg;

    fn streams(segs: &[Seg]) -> Streams {
        let frames: Vec<Vec<u8>> = segs.iter().map(Seg::frame).collect();
        Streams::of(LinkType::Ethernet, frames.iter().map(Vec::as_slice))
    }

    #[test]
    fn loss_duplication_and_reordering_are_each_caught() {
        let a = Seg::default();
        let (b, c) = (a.next(), a.next().next());
        let base = streams(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(base.compare(&base), Ok(()));
        assert_eq!(base.total_bytes(), 300);
        assert!(matches!(
            base.compare(&streams(&[a.clone(), c.clone()])),
            Err(StreamDiff::Bytes { .. })
        ));
        assert!(matches!(
            base.compare(&streams(&[a.clone(), b.clone(), b.clone(), c.clone()])),
            Err(StreamDiff::Bytes { .. })
        ));
        assert!(matches!(
            base.compare(&streams(&[a.clone(), c.clone(), b.clone()])),
            Err(StreamDiff::Bytes { .. })
        ));
        let other = Seg {
            sport: 1,
            ..a.clone()
        };
        assert!(matches!(
            base.compare(&streams(&[a, b, c, other])),
            Err(StreamDiff::Missing { .. })
        ));
    }

    #[test]
    fn a_segment_start_that_moved_is_caught() {
        // Same bytes, but the second output segment claims another seq.
        let a = Seg {
            payload: 4,
            seq: 0,
            ..Seg::default()
        };
        let b = a.next();
        let shifted = Seg {
            seq: 8,
            payload: 4,
            ..Seg::default()
        };
        let input = streams(&[a.clone(), b]);
        let mut out = streams(&[a, shifted]);
        // Make the bytes equal so only the start differs.
        out.flows.values_mut().next().unwrap().bytes =
            input.flows.values().next().unwrap().bytes.clone();
        assert!(matches!(
            input.compare(&out),
            Err(StreamDiff::Start { seq: 8, .. })
        ));
    }
}
