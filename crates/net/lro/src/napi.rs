//! A driver's receive loop over a capture: packets arrive, each NAPI poll
//! hands up to `budget` of them to LRO or GRO, and the poll ends with
//! `lro_flush_all()` / `napi_gro_flush()`.
//!
//! The page: "A logical place for such a call [lro_flush_all] might be at
//! the end of a NAPI driver's poll() method." When a poll ends is modelled
//! from the capture:
//!
//! * without `rx_usecs`, the ring is never empty (the capture is replayed
//!   at line rate): a poll ends after `budget` packets;
//! * with `rx_usecs`, the NIC raises an interrupt `rx_usecs` after the
//!   first packet of a poll (interrupt moderation): the poll ends after
//!   `budget` packets or at the first packet that arrives later than that.
//!
//! Each delivered packet carries the time of the arrival that released it,
//! so the written capture's timestamps never go backwards. Time in
//! aggregation is measured per merged frame in packet arrivals (how many
//! packets arrived while it was held) and in capture nanoseconds.
//!
//! Invariant of a [`Replay`]: `Σ segs(out) == packets in` (every frame
//! comes out once, alone or inside an aggregate).

use crate::capture::Packet;
use crate::gro::{GroConfig, GroConfigError, GroMgr};
use crate::lro::{ConfigError, LroConfig, LroMgr};
use crate::skb::Skb;
use crate::stats::Stats;
use crate::wire::LinkType;

/// LRO or GRO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// inet_lro's rules.
    Lro,
    /// GRO's rules.
    Gro,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lro" => Ok(Mode::Lro),
            "gro" => Ok(Mode::Gro),
            _ => Err(format!("unknown mode {s:?}; expected lro or gro")),
        }
    }
}

impl Mode {
    /// `lro` or `gro`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Lro => "lro",
            Mode::Gro => "gro",
        }
    }
}

/// An LRO manager or a GRO engine behind one interface.
#[derive(Debug)]
pub enum Engine<B> {
    /// LRO.
    Lro(LroMgr<B>),
    /// GRO.
    Gro(GroMgr<B>),
}

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// LRO configuration.
    #[error(transparent)]
    Lro(#[from] ConfigError),
    /// GRO configuration.
    #[error(transparent)]
    Gro(#[from] GroConfigError),
}

impl<B: AsRef<[u8]>> Engine<B> {
    /// An LRO manager.
    pub fn lro(cfg: LroConfig, link: LinkType) -> Result<Self, EngineError> {
        Ok(Engine::Lro(LroMgr::new(cfg, link)?))
    }

    /// A GRO engine.
    pub fn gro(cfg: GroConfig, link: LinkType) -> Result<Self, EngineError> {
        Ok(Engine::Gro(GroMgr::new(cfg, link)?))
    }

    /// Receives one frame.
    #[inline]
    pub fn receive<F: FnMut(Skb<B>)>(&mut self, frame: B, stack: &mut F) {
        match self {
            Engine::Lro(m) => m.receive_skb(frame, stack),
            Engine::Gro(m) => m.receive(frame, stack),
        }
    }

    /// Ends a poll: everything held goes up.
    #[inline]
    pub fn flush_all<F: FnMut(Skb<B>)>(&mut self, stack: &mut F) {
        match self {
            Engine::Lro(m) => m.flush_all(stack),
            Engine::Gro(m) => m.flush_all(stack),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        match self {
            Engine::Lro(m) => m.stats(),
            Engine::Gro(m) => m.stats(),
        }
    }

    /// Packets held.
    pub fn held_packets(&self) -> u64 {
        match self {
            Engine::Lro(m) => m.held_packets(),
            Engine::Gro(m) => m.held_packets(),
        }
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> u64 {
        match self {
            Engine::Lro(m) => m.held_bytes(),
            Engine::Gro(m) => m.held_bytes(),
        }
    }

    /// Checks the engine's invariants.
    pub fn assert_invariants(&self) {
        match self {
            Engine::Lro(m) => m.assert_invariants(),
            Engine::Gro(m) => m.assert_invariants(),
        }
    }
}

/// When polls end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NapiConfig {
    /// Packets per poll (`NAPI_POLL_WEIGHT` is 64).
    pub budget: usize,
    /// Interrupt moderation in microseconds; `None` replays at line rate.
    pub rx_usecs: Option<u64>,
}

impl Default for NapiConfig {
    fn default() -> Self {
        NapiConfig {
            budget: 64,
            rx_usecs: None,
        }
    }
}

/// A frame of a capture, tagged with its index so that its time in
/// aggregation can be measured when it comes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tagged<'a> {
    /// Index in the capture.
    pub idx: u32,
    /// The frame.
    pub data: &'a [u8],
}

impl AsRef<[u8]> for Tagged<'_> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.data
    }
}

/// A packet handed up, with the time it went up.
#[derive(Clone, Debug)]
pub struct OutPacket<'a> {
    /// Delivery time (the arrival that released it), ns.
    pub ts_ns: u64,
    /// Length on the wire: the input's for a frame passed through, the
    /// packet's own for an aggregate.
    pub orig_len: u32,
    /// The packet.
    pub skb: Skb<Tagged<'a>>,
    /// Index of the newest input frame it carries.
    pub last_idx: u32,
}

/// What a replay measured.
#[derive(Clone, Debug, Default)]
pub struct Replay<'a> {
    /// The packets handed up, in order.
    pub out: Vec<OutPacket<'a>>,
    /// The engine's counters.
    pub stats: Stats,
    /// Polls run.
    pub polls: u64,
    /// Most packets held at once.
    pub peak_held_packets: u64,
    /// Most bytes held at once.
    pub peak_held_bytes: u64,
    /// Frames that went up inside an aggregate of more than one segment.
    pub merged_frames: u64,
    /// Σ over those frames of the packets that arrived while each was held.
    pub held_arrivals_sum: u64,
    /// The most packets that arrived while one frame was held.
    pub held_arrivals_max: u64,
    /// Σ over those frames of capture time held, ns.
    pub held_ns_sum: u64,
    /// The longest capture time a frame was held, ns.
    pub held_ns_max: u64,
}

impl Replay<'_> {
    /// Mean packet arrivals a merged frame waited.
    pub fn mean_held_arrivals(&self) -> f64 {
        if self.merged_frames == 0 {
            0.0
        } else {
            self.held_arrivals_sum as f64 / self.merged_frames as f64
        }
    }

    /// Mean capture time a merged frame waited, microseconds.
    pub fn mean_held_us(&self) -> f64 {
        if self.merged_frames == 0 {
            0.0
        } else {
            self.held_ns_sum as f64 / self.merged_frames as f64 / 1000.0
        }
    }
}

/// Runs `packets` through `engine` under the poll model `napi`, keeping
/// every delivered packet.
pub fn replay<'a>(
    engine: &mut Engine<Tagged<'a>>,
    packets: &[Packet<'a>],
    napi: &NapiConfig,
) -> Replay<'a> {
    let mut r = Replay::default();
    let budget = napi.budget.max(1);
    let mut out: Vec<OutPacket<'a>> = Vec::with_capacity(packets.len());
    // Deliveries are buffered by the closure, then timed and measured here.
    let mut now_ns = 0u64;
    let mut arrived: u64 = 0;
    let mut in_poll = 0usize;
    let mut poll_start_ns = 0u64;
    let stats_hook = |out: &mut Vec<OutPacket<'a>>,
                      r: &mut Replay<'a>,
                      skb: Skb<Tagged<'a>>,
                      now_ns: u64,
                      arrived: u64| {
        let segs = skb.segs();
        let orig_len = match &skb {
            Skb::Frame(t) => packets[t.idx as usize].orig_len,
            other => other.len() as u32,
        };
        if segs > 1 {
            skb.for_each_buf(|t| {
                let waited = arrived - 1 - u64::from(t.idx);
                let ns = now_ns.saturating_sub(packets[t.idx as usize].ts_ns);
                r.merged_frames += 1;
                r.held_arrivals_sum += waited;
                r.held_arrivals_max = r.held_arrivals_max.max(waited);
                r.held_ns_sum += ns;
                r.held_ns_max = r.held_ns_max.max(ns);
            });
        }
        let mut last_idx = 0;
        skb.for_each_buf(|t| last_idx = last_idx.max(t.idx));
        out.push(OutPacket {
            ts_ns: now_ns,
            orig_len,
            skb,
            last_idx,
        });
    };
    let mut pending: Vec<Skb<Tagged<'a>>> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let poll_over = in_poll == budget
            || napi
                .rx_usecs
                .is_some_and(|us| in_poll > 0 && p.ts_ns.saturating_sub(poll_start_ns) > us * 1000);
        if poll_over {
            engine.flush_all(&mut |s| pending.push(s));
            for s in pending.drain(..) {
                stats_hook(&mut out, &mut r, s, now_ns, arrived);
            }
            in_poll = 0;
        }
        if in_poll == 0 {
            r.polls += 1;
            poll_start_ns = p.ts_ns;
        }
        in_poll += 1;
        now_ns = now_ns.max(p.ts_ns);
        arrived += 1;
        engine.receive(
            Tagged {
                idx: i as u32,
                data: p.data,
            },
            &mut |s| pending.push(s),
        );
        for s in pending.drain(..) {
            stats_hook(&mut out, &mut r, s, now_ns, arrived);
        }
        r.peak_held_packets = r.peak_held_packets.max(engine.held_packets());
        r.peak_held_bytes = r.peak_held_bytes.max(engine.held_bytes());
    }
    engine.flush_all(&mut |s| pending.push(s));
    for s in pending.drain(..) {
        stats_hook(&mut out, &mut r, s, now_ns, arrived);
    }
    r.stats = engine.stats().clone();
    r.out = out;
    debug_assert_eq!(
        r.out.iter().map(|o| u64::from(o.skb.segs())).sum::<u64>(),
        packets.len() as u64
    );
    r
}

impl<'a> Replay<'a> {
    /// The delivered packets in capture-file order: each placed at the
    /// arrival of the newest frame it carries, with that frame's time.
    ///
    /// The stack sees a merged packet only when it is flushed, but a
    /// capture of both directions also holds packets the stack never
    /// receives through this NIC (the ACKs the receiver sent); written in
    /// delivery order, those would precede the data that caused them and
    /// readers would call that data a retransmission. Placed at its newest
    /// frame's arrival, every packet keeps its flow's order (a flow's
    /// deliveries carry increasing newest frames) and stays before what
    /// the other side sent in reply to its last segment.
    pub fn file_order(&self, packets: &[Packet<'a>]) -> Vec<(u64, &OutPacket<'a>)> {
        let mut v: Vec<&OutPacket<'a>> = self.out.iter().collect();
        v.sort_by_key(|o| o.last_idx);
        v.into_iter()
            .map(|o| (packets[o.last_idx as usize].ts_ns, o))
            .collect()
    }
}

/// Runs `frames` through `engine` with a flush every `budget` packets,
/// dropping what comes out (the benchmark loop): returns packets handed up.
pub fn run_counting<B: AsRef<[u8]>>(
    engine: &mut Engine<B>,
    frames: impl IntoIterator<Item = B>,
    budget: usize,
) -> u64 {
    let mut up = 0u64;
    let mut count = |s: Skb<B>| {
        up += 1;
        drop(s);
    };
    let mut in_poll = 0;
    for f in frames {
        if in_poll == budget {
            engine.flush_all(&mut count);
            in_poll = 0;
        }
        engine.receive(f, &mut count);
        in_poll += 1;
    }
    engine.flush_all(&mut count);
    up
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Seg;

    fn packets(frames: &[(u64, Vec<u8>)]) -> Vec<Packet<'_>> {
        frames
            .iter()
            .map(|(t, d)| Packet {
                ts_ns: *t,
                orig_len: d.len() as u32,
                data: d,
            })
            .collect()
    }

    #[test]
    fn a_raw_ip_capture_round_trips_and_aggregates() {
        // Ethernet frames stripped to raw IP, written as DLT 101, read back.
        let mut s = Seg::default();
        let mut w = crate::capture::CaptureWriter::new(Vec::new(), crate::CaptureFormat::Pcap, 101)
            .unwrap();
        for i in 0..6u64 {
            let f = s.frame();
            w.write(i * 1000, (f.len() - 14) as u32, &f[14..]).unwrap();
            s = s.next();
        }
        let bytes = w.into_inner();
        let cap = crate::Capture::parse(&bytes).unwrap();
        assert_eq!(cap.link(), Some(LinkType::RawIp));
        let mut e = Engine::lro(LroConfig::default(), LinkType::RawIp).unwrap();
        let r = replay(&mut e, &cap.packets, &NapiConfig::default());
        assert_eq!(
            r.out.iter().map(|o| o.skb.segs()).collect::<Vec<_>>(),
            vec![6]
        );
        let merged = r.out[0].skb.to_vec();
        let seg = crate::wire::parse(LinkType::RawIp, &merged).unwrap();
        assert_eq!((seg.l3_off, seg.payload_len()), (0, 600));
        assert!(crate::wire::verify_tcp_checksum(&seg, &[&merged]).is_some());
    }

    #[test]
    fn a_poll_ends_after_budget_packets_or_rx_usecs() {
        // 10 segments of one flow, 10 us apart.
        let mut s = Seg::default();
        let mut frames = Vec::new();
        for i in 0..10u64 {
            frames.push((i * 10_000, s.frame()));
            s = s.next();
        }
        let p = packets(&frames);
        let mk = || Engine::lro(LroConfig::default(), LinkType::Ethernet).unwrap();
        let r = replay(
            &mut mk(),
            &p,
            &NapiConfig {
                budget: 4,
                rx_usecs: None,
            },
        );
        assert_eq!(r.polls, 3);
        assert_eq!(
            r.out.iter().map(|o| o.skb.segs()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        // The first four waited 3, 2, 1, 0 arrivals: mean over 10 frames
        // (3+2+1+0)*2 + (1+0) = 13 -> 1.3.
        assert_eq!(r.held_arrivals_sum, 13);
        assert_eq!(r.held_arrivals_max, 3);
        // A 25 us window: polls of 3 packets (0, 10, 20 us), then 30..50.
        let r = replay(
            &mut mk(),
            &p,
            &NapiConfig {
                budget: 64,
                rx_usecs: Some(25),
            },
        );
        assert_eq!(
            r.out.iter().map(|o| o.skb.segs()).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        // The poll ends at its last packet (20 us): the first waited 20 us.
        assert_eq!(r.held_ns_max, 20_000);
        // Every frame out once; file order by newest frame keeps times going forward.
        let file = r.file_order(&p);
        assert!(file.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(file.iter().map(|(_, o)| o.skb.segs()).sum::<u32>(), 10);
    }
}
