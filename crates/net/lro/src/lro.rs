//! The LRO manager: inet_lro's descriptors, eligibility check, merge and
//! flush, over real frames.
//!
//! Mirrors net/ipv4/inet_lro.c (2.6.24, with the padded-frame check that
//! came soon after): `lro_receive_skb()` → `__lro_proc_skb()`,
//! `lro_receive_frags()` → `__lro_proc_segment()`, `lro_get_desc()`,
//! `lro_tcp_ip_check()`, `lro_init_desc()`, `lro_add_common()`,
//! `lro_add_packet()`, `lro_add_frags()`, `lro_flush()`,
//! `lro_update_tcp_ip_header()`, `lro_flush_all()`, `lro_flush_pkt()`.
//! Seed: 000_2fa08a6962ebae3f.txt ("Large receive offload", LWN 2007).
//!
//! # Data structures
//!
//! ```text
//!  LroMgr
//!   descs: [ Option<Session> ; max_desc ]      the kernel's lro_arr[]
//!            │ Some: one TCP flow being aggregated
//!            ▼
//!   Session { key (vlan, saddr, daddr, sport, dport), seg0 (parent's headers),
//!             pieces: [parent frame][payload 2]..[payload n],
//!             tcp_next_seq, tcp_ack, tcp_window, tsval, tsecr,
//!             ip_tot_len, pkt_aggr_cnt, nr_frags, mss, data_csum }
//!   keys:  [ FlowKey ; max_desc ]  compact copy, NO_FLOW when empty   (Hashed)
//!   index: FlowKey → slot          when max_desc > SCAN_MAX              (Hashed)
//!   free:  bitmap of empty slots                                         (Hashed)
//! ```
//!
//! # Rules (in the kernel's order)
//!
//! 1. The header callback: the frame must parse to IPv4 TCP (else pass:
//!    parse reason, or `Ipv6`); under [`Checksum::Verify`] its IP and TCP
//!    checksums must be right (the NIC's `CHECKSUM_UNNECESSARY`), or its
//!    TCP checksum field partial (`CHECKSUM_PARTIAL`, see [`Checksum`]).
//! 2. `lro_get_desc`: the first active descriptor of the flow, else the
//!    first inactive one, else `no_desc++` and pass.
//! 3. Inactive descriptor: `lro_tcp_ip_check` → pass with its reason, or
//!    start a session (`aggregated++`).
//! 4. Active: `seq != tcp_next_seq` → flush, then pass (`OutOfOrder`);
//!    `lro_tcp_ip_check` fails → flush, then pass; else append
//!    (`aggregated++`), then flush if `pkt_aggr_cnt >= max_aggr` (frags
//!    path: `nr_frags >= max_aggr`) or the IP length exceeds
//!    `65535 - mtu`.
//!
//! `lro_tcp_ip_check` rejects, in order: `tot_len != len` (padding), no
//! payload, `ihl != 5`, CWR/ECE/URG/RST/SYN/FIN or no ACK, ECN CE, `doff`
//! not 5 or 8, options other than NOP NOP TIMESTAMP, TSval before the
//! descriptor's, TSecr 0.
//!
//! # Invariants ([`LroMgr::assert_invariants`])
//!
//! * `held_packets == Σ active pkt_aggr_cnt`, each `1 <= pkt_aggr_cnt`;
//! * for an active session `s`: `s.ip_tot_len == ihl*4 + doff*4 + Σ payload`
//!   and `s.tcp_next_seq == seq0 + Σ payload (mod 2^32)`;
//! * hashed lookup: `keys[i]` is slot i's key or `NO_FLOW`; `index` (above
//!   `SCAN_MAX` slots) maps exactly the active keys to their slots; `free`
//!   has a bit for exactly the empty slots;
//! * the stats identities of [`Stats`].
//!
//! # Where klab differs, and why
//!
//! * VLAN: the manager sees tags the way the hardware-accelerated path
//!   (`lro_vlan_hwaccel_receive_skb`) did: outside the IP length. The tag
//!   is part of the flow key (`lro_check_tcp_conn` compared only addresses
//!   and ports, so two VLANs carrying the same 4-tuple would have merged).
//! * A packet of a flow with an active session that is passed up before
//!   the lookup (bad checksum) first flushes the session, so a flow's bytes
//!   never overtake each other; the kernel let them, and TCP dropped the
//!   bad segment anyway.
//! * Appending a segment without the timestamp option to a session with
//!   timestamps keeps the TSecr; inet_lro read 4 payload bytes as TSecr.
//! * `flush_pkt` for a flow with no descriptor does nothing (the kernel
//!   would dereference NULL when the table was full).
//! * A segment whose TCP checksum field holds only the pseudo-header sum
//!   (captured on its sender, `CHECKSUM_PARTIAL`) is aggregated, as the
//!   stack accepts such an skb; an inet_lro driver never met one (its NIC
//!   received finished checksums), and `lro_tcp_data_csum()` would have
//!   derived a wrong payload sum from it, so klab sums those payloads.
//!
//! # Locking
//!
//! None inside: a manager belongs to one NAPI context (one receive queue),
//! as in the kernel. `&mut self` on every entry point says so.

use rustc_hash::FxHashMap;

use crate::csum::Wsum;
use crate::skb::{Aggregate, DataSum, Frag, Skb, TcpRewrite, merged_head};
use crate::stats::{FlushReason, PassReason, Stats};
use crate::wire::{self, Ip, Ipv4, LinkType, Segment, TcpCsum, TcpOpts, tcp_flag};

/// How a descriptor is found for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// The kernel's `lro_get_desc()`: scan every descriptor for an active
    /// one of the flow, then scan again for the first inactive one.
    Linear,
    /// The last slot hit checked first (segments of a flow arrive in
    /// runs); then, up to `SCAN_MAX` (32) descriptors, a scan of a compact key
    /// array (16 bytes a key, four to a cache line, where the kernel reads
    /// one descriptor per line), above it a hash map from flow to slot; a
    /// bitmap of free slots, so the free slot chosen is the lowest, exactly
    /// as the linear search chooses.
    Hashed,
}

/// Whether the manager trusts the checksums of the frames it is given.
///
/// Under both, a TCP checksum field that holds only the folded
/// pseudo-header sum ([`wire::partial_check_field`]: the sender left it
/// for its device, `CHECKSUM_PARTIAL`, and the capture was taken on the
/// sending host) is taken as the kernel takes such a packet:
/// include/linux/skbuff.h `skb_csum_unnecessary()` is true for
/// `CHECKSUM_PARTIAL`, so neither `tcp_v4_rcv()` nor GRO's
/// `skb_gro_checksum_validate()` sums it again. The segment is counted
/// in [`Stats::csum_partial`] and its payload's sum is read from its
/// bytes, since the field says nothing about the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// The NIC verified them (`ip_summed = CHECKSUM_UNNECESSARY`): the
    /// payload's sum is derived from the checksum field
    /// (`lro_tcp_data_csum()`), no payload byte is read (unless the field
    /// is partial).
    Trust,
    /// Verify the IPv4 header and TCP checksums in software, as the NIC
    /// would ([`wire::check_tcp_checksum`]); a packet whose TCP checksum is
    /// neither full and valid nor partial, or whose IPv4 header checksum
    /// is wrong, is passed up unmerged (`BadChecksum`).
    Verify,
}

/// What a receive path does with a segment after its checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Take it; where its payload sum comes from.
    Take(DataSum),
    /// Pass it up alone: `BadChecksum`.
    Bad,
}

impl Checksum {
    /// The TCP checksum rule of a receive path, for `seg` in a frame given
    /// as `chunks` (the IPv4 header checksum is the caller's). Counts
    /// `csum_verified` and `csum_partial` in `stats`.
    #[inline]
    pub(crate) fn judge(self, seg: &Segment, chunks: &[&[u8]], stats: &mut Stats) -> Verdict {
        match self {
            Checksum::Trust => {
                // One compare on the fast path: a full checksum is trusted,
                // and the pseudo-header sum kept to derive the payload's.
                let pseudo = wire::pseudo_sum(seg);
                if seg.check != pseudo.fold() {
                    return Verdict::Take(DataSum::Field(pseudo));
                }
                match wire::tcp_sums(seg, chunks) {
                    Some((_, data)) => {
                        stats.csum_partial += 1;
                        Verdict::Take(DataSum::Bytes(data))
                    }
                    // Unreachable for a parsed frame: its chunks cover the
                    // payload.
                    None => Verdict::Take(DataSum::Field(pseudo)),
                }
            }
            Checksum::Verify => match wire::check_tcp_checksum(seg, chunks) {
                TcpCsum::Full(d) => {
                    stats.csum_verified += 1;
                    Verdict::Take(DataSum::Bytes(d))
                }
                TcpCsum::Partial(d) => {
                    stats.csum_partial += 1;
                    Verdict::Take(DataSum::Bytes(d))
                }
                TcpCsum::Bad => Verdict::Bad,
            },
        }
    }
}

/// The manager's knobs (`struct net_lro_mgr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LroConfig {
    /// Number of descriptors, one per flow aggregated at once (`max_desc`).
    pub max_desc: usize,
    /// Packets (skb path) or page fragments (frags path) per aggregate
    /// (`max_aggr`). Checked after an append, so an aggregate always holds
    /// at least two packets before this limit flushes it.
    pub max_aggr: u32,
    /// The device MTU: an aggregate is flushed once its IP length exceeds
    /// `65535 - mtu` (`lro_desc->parent->len > 0xFFFF - dev->mtu`).
    pub mtu: u32,
    /// Descriptor lookup.
    pub lookup: Lookup,
    /// Checksum trust.
    pub checksum: Checksum,
}

impl Default for LroConfig {
    /// The values drivers commonly used: 8 descriptors, 64 packets
    /// (ehea, mlx4 and ixgbe used LRO_MAX_AGGR 64 and 8-32 descriptors).
    fn default() -> Self {
        LroConfig {
            max_desc: 8,
            max_aggr: 64,
            mtu: 1500,
            lookup: Lookup::Hashed,
            checksum: Checksum::Verify,
        }
    }
}

/// A configuration the manager cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_desc` is 0 or too large.
    #[error("max_desc must be between 1 and {max}, got {got}")]
    MaxDesc {
        /// The value given.
        got: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `max_aggr` is 0.
    #[error("max_aggr must be at least 1")]
    MaxAggr,
    /// `mtu` is not below 65535.
    #[error("mtu must be between 68 and 65534, got {0}")]
    Mtu(u32),
}

/// The largest `max_desc` accepted (slots are indexed by `u32`, and the
/// table is allocated up front).
pub const MAX_DESC_LIMIT: usize = 1 << 20;

/// What identifies a flow for LRO: `lro_check_tcp_conn()`'s addresses
/// and ports, plus the VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub saddr: [u8; 4],
    /// Destination address.
    pub daddr: [u8; 4],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// VLAN TCI, or `u32::MAX` for untagged.
    pub vlan: u32,
}

/// The key of an empty slot in the compact key array: no frame has it
/// (a VLAN TCI is 16 bits; untagged is `u32::MAX`).
const NO_FLOW: FlowKey = FlowKey {
    saddr: [0; 4],
    daddr: [0; 4],
    sport: 0,
    dport: 0,
    vlan: u32::MAX - 1,
};

/// Up to this many descriptors the hashed lookup scans the compact keys.
pub const SCAN_MAX: usize = 32;

impl FlowKey {
    #[inline]
    fn of(seg: &Segment, v4: &Ipv4) -> FlowKey {
        FlowKey {
            saddr: v4.src,
            daddr: v4.dst,
            sport: seg.sport,
            dport: seg.dport,
            vlan: seg.vlan.map_or(u32::MAX, u32::from),
        }
    }
}

/// One flow being aggregated (`struct net_lro_desc`, active).
#[derive(Debug)]
struct Session<B> {
    key: FlowKey,
    /// The parent's parsed headers.
    seg0: Segment,
    /// pieces[0..first_frags] is the parent (whole frame on the skb path,
    /// its page fragments on the frags path); then the merged payloads.
    pieces: Vec<Frag<B>>,
    frags_path: bool,
    tcp_next_seq: u32,
    tcp_ack: u32,
    tcp_window: u16,
    tcp_rcv_tsval: u32,
    tcp_rcv_tsecr: u32,
    tcp_saw_tstamp: bool,
    ip_tot_len: u32,
    pkt_aggr_cnt: u32,
    nr_frags: u32,
    mss: u32,
    data_csum: Wsum,
    /// TCP payload bytes merged so far (for the checksum's block offsets).
    payload: u32,
    held_bytes: u64,
}

/// A received packet on its way into a descriptor.
enum Input<B> {
    Skb(B),
    Frags(Vec<Frag<B>>, u32),
}

impl<B: AsRef<[u8]>> Input<B> {
    fn into_skb(self) -> Skb<B> {
        match self {
            Input::Skb(b) => Skb::Frame(b),
            Input::Frags(f, _) => Skb::Frags(f),
        }
    }

    fn len(&self) -> usize {
        match self {
            Input::Skb(b) => b.as_ref().len(),
            Input::Frags(f, _) => f.iter().map(|f| f.bytes().len()).sum(),
        }
    }

    fn true_size(&self) -> u64 {
        match self {
            Input::Skb(b) => b.as_ref().len() as u64,
            Input::Frags(_, t) => u64::from(*t),
        }
    }
}

/// The LRO manager of one receive queue.
#[derive(Debug)]
pub struct LroMgr<B> {
    cfg: LroConfig,
    link: LinkType,
    descs: Vec<Option<Session<B>>>,
    keys: Vec<FlowKey>,
    index: FxHashMap<FlowKey, u32>,
    free: Vec<u64>,
    last: usize,
    stats: Stats,
    held_packets: u64,
    held_bytes: u64,
}

impl<B: AsRef<[u8]>> LroMgr<B> {
    /// A manager for a device of link type `link`.
    pub fn new(cfg: LroConfig, link: LinkType) -> Result<Self, ConfigError> {
        if cfg.max_desc == 0 || cfg.max_desc > MAX_DESC_LIMIT {
            return Err(ConfigError::MaxDesc {
                got: cfg.max_desc,
                max: MAX_DESC_LIMIT,
            });
        }
        if cfg.max_aggr == 0 {
            return Err(ConfigError::MaxAggr);
        }
        if !(68..65535).contains(&cfg.mtu) {
            return Err(ConfigError::Mtu(cfg.mtu));
        }
        let words = cfg.max_desc.div_ceil(64);
        let mut free = vec![u64::MAX; words];
        let tail = cfg.max_desc % 64;
        if tail != 0 {
            free[words - 1] = (1u64 << tail) - 1;
        }
        Ok(LroMgr {
            cfg,
            link,
            descs: (0..cfg.max_desc).map(|_| None).collect(),
            keys: vec![NO_FLOW; cfg.max_desc],
            index: FxHashMap::default(),
            free,
            last: 0,
            stats: Stats::default(),
            held_packets: 0,
            held_bytes: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LroConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Packets held in active descriptors.
    pub fn held_packets(&self) -> u64 {
        self.held_packets
    }

    /// Bytes of received buffers held in active descriptors (frame
    /// lengths on the skb path, `true_size` on the frags path).
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Active descriptors.
    pub fn active(&self) -> usize {
        self.descs.iter().filter(|d| d.is_some()).count()
    }

    /// `lro_receive_skb()`: takes a whole received frame; hands it or an
    /// aggregate it completes (or both, the aggregate first) to `stack`.
    #[inline]
    pub fn receive_skb<F: FnMut(Skb<B>)>(&mut self, frame: B, stack: &mut F) {
        self.stats.packets_in += 1;
        let parsed = wire::parse(self.link, frame.as_ref());
        let seg = match parsed {
            Ok(s) => s,
            Err(r) => return self.pass(Skb::Frame(frame), r, stack),
        };
        let b = frame.as_ref();
        let verdict = if self.cfg.checksum == Checksum::Verify && !wire::verify_ip_checksum(&seg, b)
        {
            Verdict::Bad
        } else {
            self.cfg.checksum.judge(&seg, &[b], &mut self.stats)
        };
        let csum = match verdict {
            Verdict::Take(d) => d,
            Verdict::Bad => return self.bad_checksum(&seg, Input::Skb(frame), stack),
        };
        self.proc(&seg, csum, Input::Skb(frame), stack);
    }

    /// `lro_receive_frags()`: takes a frame received into page fragments
    /// (`frags`, whose first one holds every header) of `true_size` bytes
    /// of memory.
    pub fn receive_frags<F: FnMut(Skb<B>)>(
        &mut self,
        frags: Vec<Frag<B>>,
        true_size: u32,
        stack: &mut F,
    ) {
        self.stats.packets_in += 1;
        let len: usize = frags.iter().map(|f| f.bytes().len()).sum();
        let parsed = match frags.first() {
            Some(f0) => wire::parse_head(self.link, f0.bytes(), len),
            None => Err(PassReason::Truncated),
        };
        let seg = match parsed {
            Ok(s) => s,
            Err(r) => return self.pass(Skb::Frags(frags), r, stack),
        };
        let pseudo = match self.cfg.checksum {
            Checksum::Trust => Some(wire::pseudo_sum(&seg)),
            Checksum::Verify => None,
        };
        let csum = if let Some(p) = pseudo.filter(|p| seg.check != p.fold()) {
            // Checksum::judge's fast path, without collecting the chunks.
            DataSum::Field(p)
        } else {
            let chunks: Vec<&[u8]> = frags.iter().map(Frag::bytes).collect();
            let verdict = if self.cfg.checksum == Checksum::Verify
                && !wire::verify_ip_checksum(&seg, chunks[0])
            {
                Verdict::Bad
            } else {
                self.cfg.checksum.judge(&seg, &chunks, &mut self.stats)
            };
            match verdict {
                Verdict::Take(d) => d,
                Verdict::Bad => {
                    return self.bad_checksum(&seg, Input::Frags(frags, true_size), stack);
                }
            }
        };
        self.proc(&seg, csum, Input::Frags(frags, true_size), stack);
    }

    /// `lro_flush_all()`: delivers every active descriptor, in slot order
    /// (the end of a NAPI poll).
    pub fn flush_all<F: FnMut(Skb<B>)>(&mut self, stack: &mut F) {
        match self.cfg.lookup {
            Lookup::Linear => {
                for i in 0..self.descs.len() {
                    if self.descs[i].is_some() {
                        self.flush(i, FlushReason::FlushAll, stack);
                    }
                }
            }
            Lookup::Hashed => {
                for w in 0..self.free.len() {
                    let mut active = !self.free[w];
                    if w == self.free.len() - 1 && !self.descs.len().is_multiple_of(64) {
                        active &= (1u64 << (self.descs.len() % 64)) - 1;
                    }
                    while active != 0 {
                        let b = active.trailing_zeros() as usize;
                        active &= active - 1;
                        self.flush(w * 64 + b, FlushReason::FlushAll, stack);
                    }
                }
            }
        }
    }

    /// `lro_flush_pkt()`: delivers the descriptor of the flow `frame`
    /// belongs to, if it has one; `frame` itself is not added. Returns
    /// whether a descriptor was flushed.
    pub fn flush_pkt<F: FnMut(Skb<B>)>(&mut self, frame: &[u8], stack: &mut F) -> bool {
        let Ok(seg) = wire::parse(self.link, frame) else {
            return false;
        };
        let Ip::V4(v4) = seg.ip else { return false };
        match self.find_active(&FlowKey::of(&seg, &v4)) {
            Some(i) => {
                self.flush(i, FlushReason::FlushPkt, stack);
                true
            }
            None => false,
        }
    }

    fn bad_checksum<F: FnMut(Skb<B>)>(&mut self, seg: &Segment, input: Input<B>, stack: &mut F) {
        if let Ip::V4(v4) = seg.ip
            && let Some(i) = self.find_active(&FlowKey::of(seg, &v4))
        {
            self.flush(i, FlushReason::Ineligible, stack);
        }
        self.pass(input.into_skb(), PassReason::BadChecksum, stack);
    }

    #[inline]
    fn pass<F: FnMut(Skb<B>)>(&mut self, skb: Skb<B>, reason: PassReason, stack: &mut F) {
        self.stats.pass(reason);
        stack(skb);
    }

    /// `__lro_proc_skb()` / `__lro_proc_segment()` after the header
    /// callback.
    #[inline]
    fn proc<F: FnMut(Skb<B>)>(
        &mut self,
        seg: &Segment,
        csum: DataSum,
        input: Input<B>,
        stack: &mut F,
    ) {
        let Ip::V4(v4) = seg.ip else {
            // get_skb_header() did not set LRO_IPV4.
            return self.pass(input.into_skb(), PassReason::Ipv6, stack);
        };
        let key = FlowKey::of(seg, &v4);
        let Some(i) = self.get_desc(&key) else {
            self.stats.no_desc += 1;
            return self.pass(input.into_skb(), PassReason::NoDesc, stack);
        };
        // lro_tcp_ip_check's `len`: the frame past its link header.
        let len = input.len() - usize::from(seg.l3_off);
        match &self.descs[i] {
            None => {
                if let Err(r) = tcp_ip_check::<B>(seg, &v4, len, None) {
                    return self.pass(input.into_skb(), r, stack);
                }
                self.init_desc(i, key, seg, csum, input);
            }
            Some(s) => {
                if s.tcp_next_seq != seg.seq {
                    self.flush(i, FlushReason::OutOfOrder, stack);
                    return self.pass(input.into_skb(), PassReason::OutOfOrder, stack);
                }
                if let Err(r) = tcp_ip_check(seg, &v4, len, Some(s)) {
                    self.flush(i, FlushReason::Ineligible, stack);
                    return self.pass(input.into_skb(), r, stack);
                }
                let (frags_path, count) = self.add(i, seg, csum, input);
                let limit = self.cfg.max_aggr;
                let s = self.descs[i].as_ref().expect("just appended");
                let full = if frags_path { s.nr_frags } else { count };
                if full >= limit {
                    self.flush(i, FlushReason::MaxAggr, stack);
                } else if s.ip_tot_len > 0xffff - self.cfg.mtu {
                    self.flush(i, FlushReason::SizeLimit, stack);
                }
            }
        }
    }

    /// The slot of the flow's active descriptor.
    #[inline]
    fn find_active(&self, key: &FlowKey) -> Option<usize> {
        match self.cfg.lookup {
            Lookup::Linear => self
                .descs
                .iter()
                .position(|d| d.as_ref().is_some_and(|s| s.key == *key)),
            Lookup::Hashed => {
                if self.keys.get(self.last) == Some(key) {
                    return Some(self.last);
                }
                if self.keys.len() <= SCAN_MAX {
                    self.keys.iter().position(|k| k == key)
                } else {
                    self.index.get(key).map(|i| *i as usize)
                }
            }
        }
    }

    /// `lro_get_desc()`: the flow's active descriptor, else the first
    /// inactive one, else none.
    #[inline]
    fn get_desc(&mut self, key: &FlowKey) -> Option<usize> {
        if let Some(i) = self.find_active(key) {
            self.last = i;
            return Some(i);
        }
        match self.cfg.lookup {
            Lookup::Linear => self.descs.iter().position(Option::is_none),
            Lookup::Hashed => self
                .free
                .iter()
                .position(|w| *w != 0)
                .map(|w| w * 64 + self.free[w].trailing_zeros() as usize),
        }
    }

    /// `lro_init_desc()`.
    fn init_desc(&mut self, i: usize, key: FlowKey, seg: &Segment, csum: DataSum, input: Input<B>) {
        let payload = seg.payload_len();
        let true_size = input.true_size();
        let (pieces, frags_path, nr_frags, data_csum) = match input {
            Input::Skb(b) => {
                let d = csum.resolve(seg, b.as_ref());
                let mut v = Vec::with_capacity(self.cfg.max_aggr.clamp(2, 64) as usize);
                v.push(Frag::whole(b));
                (v, false, 0, d)
            }
            Input::Frags(f, _) => {
                let d = csum.resolve(seg, f[0].bytes());
                let n = f.len() as u32;
                (f, true, n, d)
            }
        };
        let (tsval, tsecr, saw) = match seg.opts {
            TcpOpts::Timestamp { tsval, tsecr } => (tsval, tsecr, true),
            _ => (0, 0, false),
        };
        let Ip::V4(v4) = seg.ip else {
            unreachable!("proc passes IPv6 up")
        };
        self.descs[i] = Some(Session {
            key,
            seg0: *seg,
            pieces,
            frags_path,
            tcp_next_seq: seg.seq.wrapping_add(payload),
            tcp_ack: seg.ack,
            tcp_window: seg.window,
            tcp_rcv_tsval: tsval,
            tcp_rcv_tsecr: tsecr,
            tcp_saw_tstamp: saw,
            ip_tot_len: u32::from(v4.tot_len),
            pkt_aggr_cnt: 1,
            nr_frags,
            mss: payload,
            data_csum,
            payload,
            held_bytes: true_size,
        });
        if self.cfg.lookup == Lookup::Hashed {
            self.keys[i] = key;
            if self.keys.len() > SCAN_MAX {
                self.index.insert(key, i as u32);
            }
            self.free[i / 64] &= !(1u64 << (i % 64));
        }
        self.last = i;
        self.stats.aggregated += 1;
        self.stats.payload_aggregated += u64::from(payload);
        self.held_packets += 1;
        self.held_bytes += true_size;
    }

    /// `lro_add_common()` + `lro_add_packet()` / `lro_add_frags()`.
    /// Returns (frags path, pkt_aggr_cnt).
    #[inline]
    fn add(&mut self, i: usize, seg: &Segment, csum: DataSum, input: Input<B>) -> (bool, u32) {
        let payload = seg.payload_len();
        let true_size = input.true_size();
        let s = self.descs[i].as_mut().expect("active descriptor");
        let seg_csum = match &input {
            Input::Skb(b) => csum.resolve(seg, b.as_ref()),
            Input::Frags(f, _) => csum.resolve(seg, f[0].bytes()),
        };
        s.pkt_aggr_cnt += 1;
        s.ip_tot_len += payload;
        s.tcp_next_seq = s.tcp_next_seq.wrapping_add(payload);
        s.tcp_window = seg.window;
        s.tcp_ack = seg.ack;
        // "don't update tcp_rcv_tsval, would not work with PAWS"
        if s.tcp_saw_tstamp
            && let TcpOpts::Timestamp { tsecr, .. } = seg.opts
        {
            s.tcp_rcv_tsecr = tsecr;
        }
        s.data_csum = s.data_csum.block_add(seg_csum, s.payload as usize);
        s.payload += payload;
        s.mss = s.mss.max(payload);
        s.held_bytes += true_size;
        let data_off = seg.data_off;
        match input {
            Input::Skb(b) => s.pieces.push(Frag {
                buf: b,
                off: u32::from(data_off),
                len: payload,
            }),
            Input::Frags(frags, _) => {
                // Trim the headers from the first fragment, then take
                // fragments until the payload is covered.
                let mut left = payload as i64;
                for (k, mut f) in frags.into_iter().enumerate() {
                    if left <= 0 {
                        break;
                    }
                    if k == 0 {
                        f.off += u32::from(data_off);
                        f.len = f.len.saturating_sub(u32::from(data_off));
                    }
                    let take = (f.len as i64).min(left);
                    f.len = take as u32;
                    left -= take;
                    s.pieces.push(f);
                    s.nr_frags += 1;
                }
            }
        }
        let count = s.pkt_aggr_cnt;
        let fp = s.frags_path;
        self.stats.aggregated += 1;
        self.stats.payload_aggregated += u64::from(payload);
        self.held_packets += 1;
        self.held_bytes += true_size;
        (fp, count)
    }

    /// `lro_flush()`: rewrites the headers if more than one packet was
    /// merged, delivers, clears the descriptor.
    fn flush<F: FnMut(Skb<B>)>(&mut self, i: usize, reason: FlushReason, stack: &mut F) {
        let Some(mut s) = self.descs[i].take() else {
            return;
        };
        if self.cfg.lookup == Lookup::Hashed {
            self.keys[i] = NO_FLOW;
            if self.keys.len() > SCAN_MAX {
                self.index.remove(&s.key);
            }
            self.free[i / 64] |= 1u64 << (i % 64);
        }
        self.held_packets -= u64::from(s.pkt_aggr_cnt);
        self.held_bytes -= s.held_bytes;
        self.stats.flush(reason, s.pkt_aggr_cnt);
        if s.pkt_aggr_cnt == 1 {
            let skb = if s.frags_path {
                Skb::Frags(s.pieces)
            } else {
                Skb::Frame(s.pieces.pop().expect("parent").buf)
            };
            return stack(skb);
        }
        let seg0 = s.seg0;
        let head = merged_head(
            s.pieces[0].bytes(),
            &seg0,
            s.payload,
            TcpRewrite {
                ack: s.tcp_ack,
                window: s.tcp_window,
                tsecr: s.tcp_saw_tstamp.then_some(s.tcp_rcv_tsecr),
                flags_or: 0,
            },
            s.data_csum,
        );
        let p0 = &mut s.pieces[0];
        p0.off += u32::from(seg0.data_off);
        if s.frags_path {
            p0.len = p0.len.saturating_sub(u32::from(seg0.data_off));
        } else {
            p0.len = seg0.payload_len();
        }
        stack(Skb::Aggregate(Aggregate {
            head,
            frags: s.pieces,
            segs: s.pkt_aggr_cnt,
            gso_size: s.mss,
        }));
    }

    /// Checks the invariants of the module header.
    pub fn assert_invariants(&self) {
        let mut held = 0u64;
        let mut bytes = 0u64;
        for (i, d) in self.descs.iter().enumerate() {
            let free_bit = self.free[i / 64] & (1u64 << (i % 64)) != 0;
            match d {
                None => {
                    if self.cfg.lookup == Lookup::Hashed {
                        assert!(free_bit, "slot {i} empty but not free");
                        assert_eq!(self.keys[i], NO_FLOW);
                    }
                }
                Some(s) => {
                    assert!(s.pkt_aggr_cnt >= 1);
                    held += u64::from(s.pkt_aggr_cnt);
                    bytes += s.held_bytes;
                    let Ip::V4(v4) = s.seg0.ip else {
                        panic!("IPv6 session")
                    };
                    assert_eq!(
                        s.ip_tot_len,
                        u32::from(v4.ihl) * 4 + s.seg0.tcp_hdr_len() + s.payload
                    );
                    assert_eq!(s.tcp_next_seq, s.seg0.seq.wrapping_add(s.payload));
                    if self.cfg.lookup == Lookup::Hashed {
                        assert!(!free_bit, "slot {i} active but free");
                        assert_eq!(self.keys[i], s.key);
                        if self.keys.len() > SCAN_MAX {
                            assert_eq!(self.index.get(&s.key), Some(&(i as u32)));
                        }
                    }
                }
            }
        }
        if self.cfg.lookup == Lookup::Hashed {
            let active = self.active();
            assert_eq!(self.keys.iter().filter(|k| **k != NO_FLOW).count(), active);
            if self.keys.len() > SCAN_MAX {
                assert_eq!(self.index.len(), active);
            }
        }
        assert_eq!(held, self.held_packets);
        assert_eq!(bytes, self.held_bytes);
        self.stats.assert_invariants(held);
    }
}

/// `after(a, b)`: sequence-space comparison, `a` later than `b`.
#[inline]
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// `lro_tcp_ip_check()`: the first rule the segment breaks, in the
/// kernel's order. `len` is the frame length past the link header.
#[inline]
fn tcp_ip_check<B>(
    seg: &Segment,
    v4: &Ipv4,
    len: usize,
    desc: Option<&Session<B>>,
) -> Result<(), PassReason> {
    if usize::from(v4.tot_len) != len {
        return Err(PassReason::Padded);
    }
    if seg.payload_len() == 0 {
        return Err(PassReason::NoPayload);
    }
    if v4.ihl != 5 {
        return Err(PassReason::IpOptions);
    }
    let f = seg.flags;
    if f & (tcp_flag::CWR
        | tcp_flag::ECE
        | tcp_flag::URG
        | tcp_flag::RST
        | tcp_flag::SYN
        | tcp_flag::FIN)
        != 0
        || f & tcp_flag::ACK == 0
    {
        return Err(PassReason::TcpFlags);
    }
    if v4.tos & 3 == 3 {
        return Err(PassReason::EcnCe);
    }
    match seg.opts {
        TcpOpts::None => Ok(()),
        TcpOpts::Other => Err(PassReason::TcpOptions),
        TcpOpts::Timestamp { tsval, tsecr } => {
            if let Some(d) = desc
                && after(d.tcp_rcv_tsval, tsval)
            {
                return Err(PassReason::TsvalOrder);
            }
            if tsecr == 0 {
                return Err(PassReason::TsecrZero);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Seg, Up};
    use crate::wire::tcp_flag::*;

    fn mgr(cfg: LroConfig) -> LroMgr<Vec<u8>> {
        LroMgr::new(cfg, LinkType::Ethernet).unwrap()
    }

    fn cfg() -> LroConfig {
        LroConfig::default()
    }

    /// Feeds `segs` through a manager, then flushes; returns what went up.
    #[track_caller]
    fn run(m: &mut LroMgr<Vec<u8>>, segs: &[Seg]) -> Up {
        let mut up = Up::default();
        for s in segs {
            m.receive_skb(s.frame(), &mut up.take());
            m.assert_invariants();
        }
        m.flush_all(&mut up.take());
        m.assert_invariants();
        up
    }

    /// A run of `n` in-order segments of one flow from `first`.
    fn train(first: Seg, n: usize) -> Vec<Seg> {
        let mut v = vec![first];
        while v.len() < n {
            let next = v.last().unwrap().next();
            v.push(next);
        }
        v
    }

    #[track_caller]
    fn first_rejection(bad: Seg) -> PassReason {
        let mut m = mgr(cfg());
        let mut up = Up::default();
        m.receive_skb(bad.frame(), &mut up.take());
        m.assert_invariants();
        assert_eq!(m.stats().aggregated, 0, "{bad:?} was aggregated");
        m.stats().passed_nonzero()[0].0
    }

    #[test]
    fn a_plain_segment_starts_a_session_and_the_next_joins_it() {
        let mut m = mgr(cfg());
        let up = run(&mut m, &train(Seg::default(), 3));
        assert_eq!(up.segs(), vec![3]);
        let st = m.stats();
        assert_eq!(
            (st.aggregated, st.flushed, st.merged, st.packets_out),
            (3, 1, 1, 1)
        );
        assert_eq!(st.flushes(FlushReason::FlushAll), 1);
    }

    #[test]
    fn each_eligibility_rule_rejects_a_new_session() {
        // lro_tcp_ip_check(), in the kernel's order.
        let d = Seg::default();
        assert_eq!(
            first_rejection(Seg {
                pad: 6,
                ..d.clone()
            }),
            PassReason::Padded
        );
        assert_eq!(
            first_rejection(Seg {
                payload: 0,
                ..d.clone()
            }),
            PassReason::NoPayload
        );
        assert_eq!(
            first_rejection(Seg {
                ip_opts: true,
                ..d.clone()
            }),
            PassReason::IpOptions
        );
        for f in [CWR, ECE, URG, RST, SYN, FIN] {
            let s = Seg {
                flags: ACK | f,
                ..d.clone()
            };
            assert_eq!(first_rejection(s), PassReason::TcpFlags, "flag {f:#x}");
        }
        assert_eq!(
            first_rejection(Seg {
                flags: 0,
                ..d.clone()
            }),
            PassReason::TcpFlags
        );
        assert_eq!(
            first_rejection(Seg {
                tos: 3,
                ..d.clone()
            }),
            PassReason::EcnCe
        );
        // doff 6: an MSS-sized option word.
        let other = Seg {
            ts: None,
            raw_opts: Some(vec![2, 4, 5, 0xb4]),
            ..d.clone()
        };
        assert_eq!(first_rejection(other), PassReason::TcpOptions);
        // doff 8 but the timestamp not in the NOP NOP TS layout.
        let unaligned = Seg {
            ts: None,
            raw_opts: Some(vec![8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]),
            ..d.clone()
        };
        assert_eq!(first_rejection(unaligned), PassReason::TcpOptions);
        assert_eq!(
            first_rejection(Seg {
                ts: Some((5, 0)),
                ..d.clone()
            }),
            PassReason::TsecrZero
        );
        // Padding is checked first: a padded pure ACK is `padded`.
        assert_eq!(
            first_rejection(Seg {
                pad: 6,
                payload: 0,
                ..d
            }),
            PassReason::Padded
        );
    }

    #[test]
    fn psh_ect_and_no_options_are_eligible() {
        let d = Seg::default();
        for s in [
            Seg {
                flags: ACK | PSH,
                ..d.clone()
            },
            Seg {
                tos: 2,
                ..d.clone()
            },
            Seg {
                tos: 1,
                ..d.clone()
            },
            Seg { ts: None, ..d },
        ] {
            let mut m = mgr(cfg());
            run(&mut m, std::slice::from_ref(&s));
            assert_eq!(m.stats().aggregated, 1, "{s:?}");
        }
    }

    #[test]
    fn an_ineligible_segment_flushes_the_session_then_goes_up_alone() {
        let mut segs = train(Seg::default(), 3);
        let fin = Seg {
            flags: ACK | FIN,
            ..segs[2].next()
        };
        segs.push(fin);
        segs.push(Seg {
            flags: ACK,
            ..segs[3].next()
        });
        let mut m = mgr(cfg());
        let up = run(&mut m, &segs);
        // [3 merged] [FIN alone] [the next one starts a new session]
        assert_eq!(up.segs(), vec![3, 1, 1]);
        assert_eq!(m.stats().flushes(FlushReason::Ineligible), 1);
        assert_eq!(m.stats().passed(PassReason::TcpFlags), 1);
    }

    #[test]
    fn an_out_of_order_segment_flushes_and_goes_up_alone_without_starting_a_session() {
        let t = train(Seg::default(), 5);
        // seg 2 is lost; 3 arrives: flush [0,1], 3 up alone; 4 starts anew.
        let segs = vec![t[0].clone(), t[1].clone(), t[3].clone(), t[4].clone()];
        let mut m = mgr(cfg());
        let up = run(&mut m, &segs);
        assert_eq!(up.segs(), vec![2, 1, 1]);
        assert_eq!(m.stats().passed(PassReason::OutOfOrder), 1);
        assert_eq!(m.stats().flushes(FlushReason::OutOfOrder), 1);
        assert_eq!(m.stats().flushes(FlushReason::FlushAll), 1);
    }

    #[test]
    fn tsval_may_not_go_back_and_is_kept_from_the_first_segment() {
        let a = Seg {
            ts: Some((1000, 7)),
            ..Seg::default()
        };
        let b = Seg {
            ts: Some((1005, 8)),
            ..a.next()
        };
        let c = Seg {
            ts: Some((999, 9)),
            ..b.next()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &[a.clone(), b, c]);
        assert_eq!(up.segs(), vec![2, 1]);
        assert_eq!(m.stats().passed(PassReason::TsvalOrder), 1);
        // The merged header: TSval of the first (PAWS), TSecr of the last.
        let merged = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, merged).unwrap();
        assert_eq!(
            seg.opts,
            TcpOpts::Timestamp {
                tsval: 1000,
                tsecr: 8
            }
        );
        // TSval compared in sequence space: 0x7fff_ffff after 1000 is later.
        let w = Seg {
            ts: Some((1000u32.wrapping_add(0x7fff_ffff), 8)),
            ..a.next()
        };
        let mut m = mgr(cfg());
        assert_eq!(run(&mut m, &[a, w]).segs(), vec![2]);
    }

    #[test]
    fn the_merged_header_is_rewritten_and_valid_on_the_wire() {
        let a = Seg {
            ack: 100,
            window: 10,
            flags: ACK,
            ..Seg::default()
        };
        let b = Seg {
            ack: 200,
            window: 20,
            flags: ACK | PSH,
            ..a.next()
        };
        let c = Seg {
            ack: 300,
            window: 30,
            ts: Some((100, 950)),
            payload: 51,
            ..b.next()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &[a.clone(), b, c]);
        let f = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, f).unwrap();
        seg.assert_invariants(f.len());
        let Ip::V4(v4) = seg.ip else { panic!() };
        // 20 IP + 32 TCP + 100 + 100 + 51 payload.
        assert_eq!(v4.tot_len, 20 + 32 + 251);
        assert_eq!((seg.seq, seg.ack, seg.window), (a.seq, 300, 30));
        // inet_lro keeps the parent's flags: the PSH of a later segment is lost.
        assert_eq!(seg.flags, ACK);
        assert!(wire::verify_ip_checksum(&seg, f));
        assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
        let payload: Vec<u8> = (0..251u32).map(|i| Seg::byte(a.seq + i)).collect();
        assert_eq!(seg.payload(f), &payload[..]);
        // An odd payload followed by more data: the checksum's byte swap.
        let odd = Seg {
            payload: 33,
            ..Seg::default()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &train(odd, 4));
        let f = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, f).unwrap();
        assert_eq!(seg.payload_len(), 132);
        assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
    }

    #[test]
    fn max_aggr_flushes_after_an_append_so_one_still_merges_two() {
        for (max_aggr, want) in [
            (3, vec![3, 3, 1]),
            (2, vec![2, 2, 2, 1]),
            (1, vec![2, 2, 2, 1]),
        ] {
            let mut m = mgr(LroConfig { max_aggr, ..cfg() });
            let up = run(&mut m, &train(Seg::default(), 7));
            assert_eq!(up.segs(), want, "max_aggr {max_aggr}");
            let full = want.iter().filter(|n| **n > 1).count() as u64;
            assert_eq!(m.stats().flushes(FlushReason::MaxAggr), full);
        }
    }

    #[test]
    fn an_aggregate_is_flushed_past_65535_minus_mtu() {
        // 1448-byte segments: tot_len = 52 + n * 1448 exceeds 65535 - 1500
        // = 64035 at n = 45 (65212), not at 44 (63764).
        let first = Seg {
            payload: 1448,
            ..Seg::default()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &train(first.clone(), 46));
        assert_eq!(up.segs(), vec![45, 1]);
        assert_eq!(m.stats().flushes(FlushReason::SizeLimit), 1);
        // A 9000-byte MTU lowers the limit to 56535: passed at 40
        // segments (57972), not at 39 (56524).
        let mut m = mgr(LroConfig { mtu: 9000, ..cfg() });
        let up = run(&mut m, &train(first, 41));
        assert_eq!(up.segs(), vec![40, 1]);
    }

    #[test]
    fn no_free_descriptor_passes_the_packet_and_counts_no_desc() {
        let a = Seg {
            sport: 1,
            ..Seg::default()
        };
        let b = Seg {
            sport: 2,
            ..Seg::default()
        };
        let c = Seg {
            sport: 3,
            ..Seg::default()
        };
        for lookup in [Lookup::Linear, Lookup::Hashed] {
            let mut m = mgr(LroConfig {
                max_desc: 2,
                lookup,
                ..cfg()
            });
            // Even a pure ACK of a third flow costs a no_desc: the lookup
            // comes before the eligibility check.
            let ack = Seg {
                sport: 3,
                payload: 0,
                ..Seg::default()
            };
            let up = run(&mut m, &[a.clone(), b.clone(), c.clone(), ack, a.next()]);
            assert_eq!(up.segs(), vec![1, 1, 2, 1]);
            assert_eq!(m.stats().no_desc, 2);
            assert_eq!(m.stats().passed(PassReason::NoDesc), 2);
        }
    }

    #[test]
    fn the_lowest_free_descriptor_is_taken_and_flush_all_goes_in_slot_order() {
        let flow = |p: u16| Seg {
            sport: p,
            ..Seg::default()
        };
        for lookup in [Lookup::Linear, Lookup::Hashed] {
            let mut m = mgr(LroConfig {
                max_desc: 4,
                lookup,
                ..cfg()
            });
            let mut up = Up::default();
            for p in [1, 2, 3] {
                m.receive_skb(flow(p).frame(), &mut up.take());
            }
            // Flow 2 (slot 1) goes; flow 4 takes slot 1, not slot 3.
            assert!(m.flush_pkt(&flow(2).frame(), &mut up.take()));
            m.receive_skb(flow(4).frame(), &mut up.take());
            m.flush_all(&mut up.take());
            m.assert_invariants();
            let ports: Vec<u16> = up
                .pkts
                .iter()
                .map(|(_, f)| wire::parse(LinkType::Ethernet, f).unwrap().sport)
                .collect();
            assert_eq!(ports, vec![2, 1, 4, 3], "{lookup:?}");
        }
    }

    #[test]
    fn hashed_lookup_matches_linear_search_above_and_below_the_scan_limit() {
        // 50 flows, 4 segments each, interleaved by a fixed shuffle; some
        // flows finish (FIN) and free their slots mid-way.
        let mut segs = Vec::new();
        let mut next: Vec<Seg> = (0..50)
            .map(|p| Seg {
                sport: 100 + p,
                ..Seg::default()
            })
            .collect();
        for round in 0..4 {
            for k in 0..50usize {
                let f = (k * 37 + round * 11) % 50;
                let mut s = next[f].clone();
                if round == 2 && f % 7 == 0 {
                    s.flags = ACK | FIN;
                }
                next[f] = Seg {
                    flags: ACK,
                    ..s.next()
                };
                segs.push(s);
            }
        }
        for max_desc in [3, SCAN_MAX, SCAN_MAX + 1, 40, 64] {
            let mut outs = Vec::new();
            for lookup in [Lookup::Linear, Lookup::Hashed] {
                let mut m = mgr(LroConfig {
                    max_desc,
                    lookup,
                    ..cfg()
                });
                let up = run(&mut m, &segs);
                outs.push((m.stats().clone(), up.pkts));
            }
            assert_eq!(outs[0], outs[1], "max_desc {max_desc}");
        }
    }

    #[test]
    fn flush_pkt_flushes_only_its_flow_and_adds_nothing() {
        let a = Seg {
            sport: 1,
            ..Seg::default()
        };
        let b = Seg {
            sport: 2,
            ..Seg::default()
        };
        let mut m = mgr(cfg());
        let mut up = Up::default();
        for s in [&a, &b, &a.next()] {
            m.receive_skb(s.frame(), &mut up.take());
        }
        assert!(m.flush_pkt(&a.next().next().frame(), &mut up.take()));
        assert_eq!(up.segs(), vec![2]);
        assert!(
            !m.flush_pkt(
                &Seg {
                    sport: 9,
                    ..Seg::default()
                }
                .frame(),
                &mut up.take()
            )
        );
        assert_eq!(m.stats().flushes(FlushReason::FlushPkt), 1);
        assert_eq!(m.held_packets(), 1);
        m.assert_invariants();
    }

    #[test]
    fn vlans_are_separate_flows_and_keep_their_tag() {
        let a = Seg {
            vlan: Some(77),
            ..Seg::default()
        };
        let b = Seg {
            vlan: Some(78),
            ..Seg::default()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &[a.clone(), b.clone(), a.next(), b.next()]);
        assert_eq!(up.segs(), vec![2, 2]);
        for (_, f) in &up.pkts {
            let seg = wire::parse(LinkType::Ethernet, f).unwrap();
            assert!(seg.vlan.is_some());
            assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
        }
    }

    #[test]
    fn a_bad_checksum_is_passed_up_after_its_flow_under_verify_and_merged_under_trust() {
        let t = train(Seg::default(), 3);
        let segs = vec![
            t[0].clone(),
            Seg {
                bad_csum: true,
                ..t[1].clone()
            },
            t[2].clone(),
        ];
        let mut m = mgr(cfg());
        let up = run(&mut m, &segs);
        assert_eq!(up.segs(), vec![1, 1, 1]);
        assert_eq!(m.stats().passed(PassReason::BadChecksum), 1);
        let mut m = mgr(LroConfig {
            checksum: Checksum::Trust,
            ..cfg()
        });
        assert_eq!(run(&mut m, &segs).segs(), vec![3]);
    }

    /// Issue 18: a capture taken on a Linux host with checksum offload
    /// holds only the pseudo-header sum in every TCP checksum field
    /// (`CHECKSUM_PARTIAL`); under the default `Verify` every segment was
    /// passed up as `bad_checksum` and nothing was merged. Partial fields
    /// are now taken as the kernel takes them, counted apart, and the
    /// aggregate gets a full checksum computed from the payload bytes,
    /// under both settings and on both receive paths.
    #[test]
    fn issue_18_partial_checksums_are_merged_and_the_aggregate_gets_a_full_one() {
        let partial = |s: &Seg| Seg {
            partial_csum: true,
            ..s.clone()
        };
        // An odd payload length, so the payload sums meet at odd offsets.
        let t = train(
            Seg {
                payload: 333,
                ..Seg::default()
            },
            4,
        );
        let all: Vec<Seg> = t.iter().map(partial).collect();
        let mixed = vec![t[0].clone(), partial(&t[1]), t[2].clone(), partial(&t[3])];
        for checksum in [Checksum::Verify, Checksum::Trust] {
            for (segs, verified) in [(&all, 0), (&mixed, 2)] {
                let what = format!("{checksum:?}, {verified} full");
                let mut m = mgr(LroConfig { checksum, ..cfg() });
                let up = run(&mut m, segs);
                assert_eq!(up.segs(), vec![4], "{what}");
                let st = m.stats();
                assert_eq!(st.passed(PassReason::BadChecksum), 0, "{what}");
                assert_eq!(st.csum_partial, 4 - verified, "{what}");
                let want_verified = if checksum == Checksum::Verify {
                    verified
                } else {
                    0
                };
                assert_eq!(st.csum_verified, want_verified, "{what}");
                let f = &up.pkts[0].1;
                let seg = wire::parse(LinkType::Ethernet, f).unwrap();
                assert_eq!(seg.payload_len(), 4 * 333);
                assert!(
                    matches!(wire::check_tcp_checksum(&seg, &[f]), TcpCsum::Full(_)),
                    "{what}: the aggregate's checksum"
                );
                // The frags path: headers and 100 payload bytes, then the rest.
                let mut m: LroMgr<Vec<u8>> =
                    LroMgr::new(LroConfig { checksum, ..cfg() }, LinkType::Ethernet).unwrap();
                let mut up = Up::default();
                for s in segs {
                    let f = s.frame();
                    let cut = f.len() - 233;
                    let frags = vec![
                        Frag::whole(f[..cut].to_vec()),
                        Frag::whole(f[cut..].to_vec()),
                    ];
                    m.receive_frags(frags, 4096, &mut up.take());
                }
                m.flush_all(&mut up.take());
                m.assert_invariants();
                assert_eq!(up.segs(), vec![4], "{what}, frags");
                assert_eq!(m.stats().csum_partial, 4 - verified);
                let f = &up.pkts[0].1;
                let seg = wire::parse(LinkType::Ethernet, f).unwrap();
                assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some(), "{what}");
            }
        }
        // A lone partial segment goes up as it came, its field untouched.
        let mut m = mgr(cfg());
        let up = run(&mut m, &all[..1]);
        assert_eq!(up.pkts[0].1, all[0].frame());
    }

    #[test]
    fn a_field_one_off_the_pseudo_header_sum_is_a_bad_checksum() {
        let t = train(Seg::default(), 3);
        let mut off_by_one = Seg {
            partial_csum: true,
            ..t[1].clone()
        }
        .frame();
        let seg = wire::parse(LinkType::Ethernet, &off_by_one).unwrap();
        let o = usize::from(seg.tcp_off) + 16;
        let field = wire::partial_check_field(&seg).wrapping_add(1);
        off_by_one[o..o + 2].copy_from_slice(&field.to_be_bytes());
        let mut m = mgr(cfg());
        let mut up = Up::default();
        for f in [t[0].frame(), off_by_one, t[2].frame()] {
            m.receive_skb(f, &mut up.take());
            m.assert_invariants();
        }
        m.flush_all(&mut up.take());
        assert_eq!(up.segs(), vec![1, 1, 1]);
        let st = m.stats();
        assert_eq!(st.passed(PassReason::BadChecksum), 1);
        assert_eq!((st.csum_verified, st.csum_partial), (2, 0));
        assert!(!st.mostly_bad_checksums());
    }

    #[test]
    fn sequence_numbers_wrap_past_2_32() {
        let first = Seg {
            seq: u32::MAX - 150,
            ..Seg::default()
        };
        let mut m = mgr(cfg());
        let up = run(&mut m, &train(first, 4));
        assert_eq!(up.segs(), vec![4]);
    }

    #[test]
    fn ipv6_and_garbage_pass_with_their_reason() {
        let mut m = mgr(cfg());
        let mut up = Up::default();
        m.receive_skb(
            Seg {
                v6: true,
                ..Seg::default()
            }
            .frame(),
            &mut up.take(),
        );
        m.receive_skb(vec![1, 2, 3], &mut up.take());
        let mut f = Seg::default().frame();
        f.truncate(40);
        m.receive_skb(f, &mut up.take());
        m.assert_invariants();
        assert_eq!(m.stats().passed(PassReason::Ipv6), 1);
        assert_eq!(m.stats().passed(PassReason::Truncated), 2);
        assert_eq!(up.segs(), vec![1, 1, 1]);
    }

    #[test]
    fn the_frags_path_counts_fragments_against_max_aggr() {
        // Each packet in two page fragments: headers + 40 bytes, then 60.
        let mut m: LroMgr<Vec<u8>> = LroMgr::new(
            LroConfig {
                max_aggr: 4,
                ..cfg()
            },
            LinkType::Ethernet,
        )
        .unwrap();
        let mut up = Up::default();
        let segs = train(Seg::default(), 3);
        for s in &segs {
            let f = s.frame();
            let cut = f.len() - 60;
            let frags = vec![
                Frag::whole(f[..cut].to_vec()),
                Frag::whole(f[cut..].to_vec()),
            ];
            m.receive_frags(frags, 4096, &mut up.take());
            m.assert_invariants();
        }
        m.flush_all(&mut up.take());
        // nr_frags reaches 4 after the second packet: flushed; the third
        // waits alone and goes up as its two fragments.
        assert_eq!(up.segs(), vec![2, 1]);
        assert_eq!(m.stats().flushes(FlushReason::MaxAggr), 1);
        let f = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, f).unwrap();
        assert_eq!(seg.payload_len(), 200);
        assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
        assert_eq!(up.pkts[1].1, segs[2].frame());
    }

    #[test]
    fn held_bytes_and_packets_track_the_descriptors() {
        let mut m = mgr(cfg());
        let mut up = Up::default();
        let t = train(Seg::default(), 3);
        for s in &t {
            m.receive_skb(s.frame(), &mut up.take());
        }
        assert_eq!(m.held_packets(), 3);
        assert_eq!(m.held_bytes(), 3 * t[0].frame().len() as u64);
        m.flush_all(&mut up.take());
        assert_eq!((m.held_packets(), m.held_bytes()), (0, 0));
    }

    #[test]
    fn config_limits_are_checked() {
        assert!(
            LroMgr::<Vec<u8>>::new(
                LroConfig {
                    max_desc: 0,
                    ..cfg()
                },
                LinkType::Ethernet
            )
            .is_err()
        );
        assert!(
            LroMgr::<Vec<u8>>::new(
                LroConfig {
                    max_aggr: 0,
                    ..cfg()
                },
                LinkType::Ethernet
            )
            .is_err()
        );
        assert!(
            LroMgr::<Vec<u8>>::new(
                LroConfig {
                    mtu: 65535,
                    ..cfg()
                },
                LinkType::Ethernet
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_and_keep_the_accounting(frames in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120), 0..40)) {
            for lookup in [Lookup::Linear, Lookup::Hashed] {
                let mut m = mgr(LroConfig { max_desc: 2, lookup, ..cfg() });
                let mut n = 0u64;
                for f in &frames {
                    m.receive_skb(f.clone(), &mut |s: Skb<Vec<u8>>| n += u64::from(s.segs()));
                    m.assert_invariants();
                }
                m.flush_all(&mut |s: Skb<Vec<u8>>| n += u64::from(s.segs()));
                proptest::prop_assert_eq!(n, frames.len() as u64);
            }
        }

        #[test]
        fn mutated_segments_never_panic(flips in proptest::collection::vec((0usize..90, proptest::prelude::any::<u8>()), 1..6)) {
            let t = train(Seg::default(), 6);
            let mut m = mgr(LroConfig { checksum: Checksum::Trust, ..cfg() });
            let mut n = 0u64;
            for (i, s) in t.iter().enumerate() {
                let mut f = s.frame();
                if i % 2 == 1 {
                    for (at, x) in &flips {
                        let k = at % f.len();
                        f[k] ^= x;
                    }
                }
                m.receive_skb(f, &mut |s: Skb<Vec<u8>>| n += u64::from(s.segs()));
                m.assert_invariants();
            }
            m.flush_all(&mut |s: Skb<Vec<u8>>| n += u64::from(s.segs()));
            proptest::prop_assert_eq!(n, 6);
        }
    }
}
