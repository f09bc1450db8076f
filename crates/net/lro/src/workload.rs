//! Generated bulk TCP traffic: the built-in workload of the `lro`
//! experiment and of the benchmarks.
//!
//! `flows` senders each push `segs_per_flow` full-MSS segments to one
//! receiver. Senders take turns in trains of `burst` segments (what a TSO
//! sender and a NIC's interrupt timing make of parallel streams), and the
//! wire may drop a segment (`loss`) or swap it with the next of its flow
//! (`reorder`). With `timestamps`, every segment carries NOP, NOP,
//! TIMESTAMP; TSval ticks once per `ts_every` segments of a flow (a 1 ms
//! clock at a few Gbit/s). Frames are Ethernet II, IPv4 (DF, IP ID + 1 per
//! segment) and TCP with valid checksums, 1 µs apart.
//!
//! Deterministic: the same spec (seed included) gives the same bytes. The
//! random choices use SplitMix64 seeded from the spec, so the crate needs
//! no RNG dependency.

use etherparse::PacketBuilder;

use crate::capture::Packet;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BulkSpec {
    /// Parallel flows.
    pub flows: usize,
    /// Data segments per flow (before loss).
    pub segs_per_flow: usize,
    /// Payload bytes per segment.
    pub mss: u16,
    /// Segments a flow sends before the next flow's turn.
    pub burst: usize,
    /// Carry the timestamp option.
    pub timestamps: bool,
    /// Segments per TSval tick.
    pub ts_every: u32,
    /// Probability a segment is lost.
    pub loss: f64,
    /// Probability a segment swaps places with its flow's next one.
    pub reorder: f64,
    /// Seed of the loss and reorder choices.
    pub seed: u64,
}

impl Default for BulkSpec {
    fn default() -> Self {
        BulkSpec {
            flows: 4,
            segs_per_flow: 1000,
            mss: 1448,
            burst: 8,
            timestamps: true,
            ts_every: 8,
            loss: 0.0,
            reorder: 0.0,
            seed: 1,
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One generated frame with its capture time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, ns.
    pub ts_ns: u64,
    /// Ethernet frame.
    pub data: Vec<u8>,
}

/// Generates the frames of `spec`, in wire order.
pub fn bulk(spec: &BulkSpec) -> Vec<Frame> {
    let mut rng = SplitMix(spec.seed ^ 0x6c72_6f5f_6275_6c6b);
    let mss = u32::from(spec.mss.max(1));
    // Per flow: the order its segments go on the wire (after reordering).
    let orders: Vec<Vec<usize>> = (0..spec.flows)
        .map(|_| {
            let mut o: Vec<usize> = (0..spec.segs_per_flow).collect();
            let mut i = 0;
            while i + 1 < o.len() {
                if rng.unit() < spec.reorder {
                    o.swap(i, i + 1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
            o
        })
        .collect();
    let mut next = vec![0usize; spec.flows];
    let mut frames = Vec::with_capacity(spec.flows * spec.segs_per_flow);
    let mut t_ns = 1_000_000_000u64;
    let payload: Vec<u8> = (0..mss).map(|i| (i % 251) as u8).collect();
    let burst = spec.burst.max(1);
    loop {
        let mut any = false;
        for f in 0..spec.flows {
            for _ in 0..burst {
                let Some(&k) = orders[f].get(next[f]) else {
                    break;
                };
                next[f] += 1;
                any = true;
                if rng.unit() < spec.loss {
                    continue;
                }
                frames.push(Frame {
                    ts_ns: t_ns,
                    data: segment(spec, f, k, &payload),
                });
                t_ns += 1000;
            }
        }
        if !any {
            break;
        }
    }
    frames
}

/// Segment `k` of flow `f`.
fn segment(spec: &BulkSpec, f: usize, k: usize, payload: &[u8]) -> Vec<u8> {
    let fid = f as u32;
    let seq = 1_000_000u32
        .wrapping_mul(fid + 1)
        .wrapping_add(k as u32 * payload.len() as u32);
    let src = [10, 1, (fid >> 8) as u8, fid as u8];
    let mut ip = etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, src, [10, 2, 0, 1])
        .expect("no payload yet");
    // DF set and the IP ID counting segments, as Linux senders do.
    ip.dont_fragment = true;
    ip.identification = k as u16;
    let mut tcp = etherparse::TcpHeader::new(40_000 + f as u16, 5001, seq, 65_000);
    tcp.ack = true;
    tcp.acknowledgment_number = 777;
    if spec.timestamps {
        let tsval = 5000 + (k as u32) / spec.ts_every.max(1);
        tcp.set_options(&[
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Timestamp(tsval, 123_456),
        ])
        .expect("12 option bytes fit");
    }
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .tcp_header(tcp);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("writing into a Vec");
    out
}

/// The generated frames as capture packets borrowing from `frames`.
pub fn as_packets(frames: &[Frame]) -> Vec<Packet<'_>> {
    frames
        .iter()
        .map(|f| Packet {
            ts_ns: f.ts_ns,
            orig_len: f.data.len() as u32,
            data: &f.data,
        })
        .collect()
}
