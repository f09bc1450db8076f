//! GRO beside LRO: the rules that replaced inet_lro (2.6.29, Herbert Xu),
//! over the same frames, so the two can be compared on one capture.
//!
//! Mirrors net/core/gro.c (`dev_gro_receive()`, `gro_list_prepare()`,
//! `skb_gro_receive()`, `gro_flush_oldest()`, `napi_gro_flush()`),
//! net/ipv4/af_inet.c `inet_gro_receive()`, include/net/gro.h
//! `inet_gro_flush()` / `ipv6_gro_flush()` (Linux 6.10-6.16 form),
//! net/ipv6/ip6_offload.c `ipv6_gro_receive()`, net/8021q/vlan_core.c
//! `vlan_gro_receive()`, and net/ipv4/tcp_offload.c `tcp_gro_receive()`.
//!
//! # Data structures
//!
//! ```text
//!  GroMgr
//!   buckets: [ Vec<Held> ; GRO_HASH_BUCKETS = 8 ]   napi->gro_hash[], oldest first
//!   Held { key (link header, VLAN, addresses, ports, IPv6 flow label),
//!          seg0, pieces, count, len (IP length so far), mss (gso_size),
//!          next_seq, flag word, options bytes, ip fields, fixed_id }
//! ```
//!
//! # Rules
//!
//! A segment whose IP layer sets `flush` (header not exactly 20 bytes,
//! bad IPv4 header or TCP checksum, length field not matching the frame)
//! goes up alone. A TCP checksum field holding only the pseudo-header sum
//! is not bad: it is a `CHECKSUM_PARTIAL` packet, which
//! `skb_gro_checksum_validate()` does not sum (see [`Checksum`]).
//! Otherwise, with `p` the held packet of its flow:
//!
//! * `flush` (cannot merge) if: the segment has CWR; its flag word
//!   (`doff`, flags, window) differs from `p`'s in any bit but CWR, FIN,
//!   PSH; `ack_seq` differs; any option byte differs (so timestamps must be
//!   identical); TTL, TOS or DF differ; the IP ID is neither `id0 + count`
//!   nor (DF, fixed) `id0`; IPv6 traffic class or hop limit differ; the
//!   payload is empty or larger than `p`'s `gso_size`; `seq !=
//!   p.seq + p.payload`; or `p.len + len >= gro_max_size` (`-E2BIG`).
//!   Then `p` goes up and the segment is treated as having no `p`.
//! * Otherwise merge, OR FIN/PSH into `p`'s header; `p` goes up at once if
//!   the segment is shorter than `gso_size` or has URG/PSH/RST/SYN/FIN.
//! * With no `p`: a segment with no payload or with URG/PSH/RST/SYN/FIN
//!   goes up alone; else it is held (evicting the bucket's oldest when the
//!   bucket already holds `MAX_GRO_SKBS`).
//!
//! # Invariants ([`GroMgr::assert_invariants`])
//!
//! `|bucket| <= max_held` for every bucket; `held_packets == Σ count`; for
//! each held `p`: `p.next_seq == seq0 + Σ payload`, `p.len == ip header +
//! tcp header + Σ payload < gro_max_size`, and `p` sits in bucket
//! `hash(p.key) % 8`.
//!
//! # Where klab differs
//!
//! * The TCP checksum of a merged packet is computed in full, whether its
//!   segments carried full or partial checksums (GRO leaves a
//!   pseudo-header sum for CHECKSUM_PARTIAL, `tcp4_gro_complete()`; see
//!   `skb::merged_head`).
//! * A segment that goes up alone first flushes its flow's held packet, so
//!   a flow's bytes keep their order (the kernel lets a bad-checksum or
//!   IP-options segment overtake the held one).
//! * IPv6 extension headers are not walked: such packets go up alone.
//! * The flow hash is klab's (FxHash of the key), not the NIC's RSS hash;
//!   only which bucket a flow lands in depends on it.

use std::hash::{BuildHasher, Hash};

use rustc_hash::FxBuildHasher;

use crate::csum::Wsum;
use crate::lro::{Checksum, Verdict};
use crate::skb::{Aggregate, Frag, Skb, TcpRewrite, merged_head};
use crate::stats::{FlushReason, PassReason, Stats};
use crate::wire::{self, IP_DF, Ip, LinkType, Segment, tcp_flag};

/// `GRO_HASH_BUCKETS`.
pub const GRO_HASH_BUCKETS: usize = 8;
/// `MAX_GRO_SKBS`: packets held per bucket.
pub const MAX_GRO_SKBS: usize = 8;
/// `GRO_LEGACY_MAX_SIZE` / the default `gro_max_size`.
pub const GRO_MAX_SIZE: u32 = 65536;

/// GRO's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroConfig {
    /// Packets held per bucket (`MAX_GRO_SKBS`).
    pub max_held: usize,
    /// Largest aggregate, IP length (`dev->gro_max_size`).
    pub gro_max_size: u32,
    /// Checksum trust (GRO validates with `skb_gro_checksum_validate()`
    /// unless the NIC already did).
    pub checksum: Checksum,
}

impl Default for GroConfig {
    fn default() -> Self {
        GroConfig {
            max_held: MAX_GRO_SKBS,
            gro_max_size: GRO_MAX_SIZE,
            checksum: Checksum::Verify,
        }
    }
}

/// What must match for two segments to be the same flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct GroKey {
    /// The link header (MAC addresses and EtherType; the whole SLL
    /// header), up to 16 bytes, zero-padded.
    link: [u8; 16],
    vlan: u32,
    /// IPv4 addresses in the first 8 bytes, or IPv6 addresses.
    addrs: [u8; 32],
    /// IPv6 version and flow label (`first_word & 0xF00FFFFF`), 0 for IPv4.
    label: u32,
    sport: u16,
    dport: u16,
}

impl GroKey {
    fn of(seg: &Segment, head: &[u8]) -> GroKey {
        let mut link = [0u8; 16];
        let n = usize::from(seg.l3_off).min(16);
        // With a VLAN tag the link header is 18 bytes: MACs, 0x8100, TCI,
        // inner EtherType. The TCI is in `vlan`; keep MACs and 0x8100.
        link[..n].copy_from_slice(&head[..n]);
        let mut addrs = [0u8; 32];
        let label = match &seg.ip {
            Ip::V4(v4) => {
                addrs[..4].copy_from_slice(&v4.src);
                addrs[4..8].copy_from_slice(&v4.dst);
                0
            }
            Ip::V6(v6) => {
                addrs[..16].copy_from_slice(&v6.src);
                addrs[16..].copy_from_slice(&v6.dst);
                v6.first_word & 0xf00f_ffff
            }
        };
        GroKey {
            link,
            vlan: seg.vlan.map_or(u32::MAX, u32::from),
            addrs,
            label,
            sport: seg.sport,
            dport: seg.dport,
        }
    }
}

/// A held packet (`struct sk_buff` on `gro_hash[].list` with its
/// `NAPI_GRO_CB`).
#[derive(Debug)]
struct Held<B> {
    key: GroKey,
    seg0: Segment,
    pieces: Vec<Frag<B>>,
    count: u32,
    /// `p->len`: the IP packet length so far.
    len: u32,
    /// `gso_size`: the first segment's payload length.
    mss: u32,
    next_seq: u32,
    flag_word: u32,
    opts: [u8; 40],
    opts_len: u8,
    fixed_id: bool,
    data_csum: Wsum,
    payload: u32,
    held_bytes: u64,
}

/// The GRO engine of one NAPI context.
#[derive(Debug)]
pub struct GroMgr<B> {
    cfg: GroConfig,
    link: LinkType,
    buckets: [Vec<Held<B>>; GRO_HASH_BUCKETS],
    stats: Stats,
    held_packets: u64,
    held_bytes: u64,
}

/// A configuration GRO cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroConfigError {
    /// `max_held` is 0 or above 1024.
    #[error("packets held per GRO bucket must be between 1 and 1024, got {0}")]
    MaxHeld(usize),
    /// `gro_max_size` outside 1500..=65536.
    #[error("gro_max_size must be between 1500 and 65536, got {0}")]
    MaxSize(u32),
}

impl<B: AsRef<[u8]>> GroMgr<B> {
    /// A GRO engine for a device of link type `link`.
    pub fn new(cfg: GroConfig, link: LinkType) -> Result<Self, GroConfigError> {
        if cfg.max_held == 0 || cfg.max_held > 1024 {
            return Err(GroConfigError::MaxHeld(cfg.max_held));
        }
        if !(1500..=GRO_MAX_SIZE).contains(&cfg.gro_max_size) {
            return Err(GroConfigError::MaxSize(cfg.gro_max_size));
        }
        Ok(GroMgr {
            cfg,
            link,
            buckets: Default::default(),
            stats: Stats::default(),
            held_packets: 0,
            held_bytes: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GroConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Packets held.
    pub fn held_packets(&self) -> u64 {
        self.held_packets
    }

    /// Bytes of received frames held.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// `napi_gro_receive()` → `dev_gro_receive()`.
    pub fn receive<F: FnMut(Skb<B>)>(&mut self, frame: B, stack: &mut F) {
        self.stats.packets_in += 1;
        let b = frame.as_ref();
        let seg = match wire::parse(self.link, b) {
            Ok(s) => s,
            Err(r) => return self.pass(frame, r, stack),
        };
        let key = GroKey::of(&seg, b);
        let bucket = (FxBuildHasher.hash_one(key) as usize) % GRO_HASH_BUCKETS;
        let pos = self.buckets[bucket].iter().position(|h| h.key == key);

        // The IP layer's and the checksum's verdicts: NAPI_GRO_CB(skb)->flush.
        // The IPv4 header checksum is checked here under either setting
        // (inet_gro_receive() sums the header itself); the TCP checksum by
        // Checksum::judge, which takes a partial field as
        // skb_gro_checksum_validate() takes CHECKSUM_PARTIAL.
        let ip_flush = match &seg.ip {
            Ip::V4(v4) if v4.ihl != 5 => Some(PassReason::IpOptions),
            Ip::V4(_) if !wire::verify_ip_checksum(&seg, b) => Some(PassReason::BadChecksum),
            _ if seg.data_end as usize != b.len() => Some(PassReason::Padded),
            _ => None,
        };
        let verdict = match ip_flush {
            Some(reason) => Err(reason),
            None => match self.cfg.checksum.judge(&seg, &[b], &mut self.stats) {
                Verdict::Take(d) => Ok(d),
                Verdict::Bad => Err(PassReason::BadChecksum),
            },
        };
        let csum = match verdict {
            Ok(d) => d,
            Err(reason) => {
                if let Some(k) = pos {
                    self.complete(bucket, k, FlushReason::Ineligible, stack);
                }
                return self.pass(frame, reason, stack);
            }
        };

        let len = seg.payload_len();
        let flags = seg.flags;
        if let Some(k) = pos {
            let p = &mut self.buckets[bucket][k];
            let why = mismatch(p, &seg, frame.as_ref(), self.cfg.gro_max_size);
            match why {
                Some(reason) => {
                    // mss = 1: p goes up; the segment is judged alone below.
                    self.complete(bucket, k, reason, stack);
                }
                None => {
                    let d = csum.resolve(&seg, frame.as_ref());
                    let true_size = frame.as_ref().len() as u64;
                    p.data_csum = p.data_csum.block_add(d, p.payload as usize);
                    p.payload += len;
                    p.len += len;
                    p.count += 1;
                    p.next_seq = p.next_seq.wrapping_add(len);
                    p.flag_word |= u32::from(flags & (tcp_flag::FIN | tcp_flag::PSH)) << 16;
                    p.held_bytes += true_size;
                    p.pieces.push(Frag {
                        buf: frame,
                        off: u32::from(seg.data_off),
                        len,
                    });
                    let mss = p.mss;
                    self.stats.aggregated += 1;
                    self.stats.payload_aggregated += u64::from(len);
                    self.held_packets += 1;
                    self.held_bytes += true_size;
                    let final_flush = len < mss
                        || flags
                            & (tcp_flag::URG
                                | tcp_flag::PSH
                                | tcp_flag::RST
                                | tcp_flag::SYN
                                | tcp_flag::FIN)
                            != 0;
                    if final_flush {
                        self.complete(bucket, k, FlushReason::GroFinal, stack);
                    }
                    return;
                }
            }
        }
        // No held packet of this flow (or it just went up): mss = 1.
        if len == 0 {
            return self.pass(frame, PassReason::NoPayload, stack);
        }
        if flags & (tcp_flag::URG | tcp_flag::PSH | tcp_flag::RST | tcp_flag::SYN | tcp_flag::FIN)
            != 0
        {
            return self.pass(frame, PassReason::TcpFlags, stack);
        }
        if self.buckets[bucket].len() >= self.cfg.max_held {
            self.complete(bucket, 0, FlushReason::Evicted, stack);
        }
        let b = frame.as_ref();
        let d = csum.resolve(&seg, b);
        let opts = seg.options(b);
        let mut o = [0u8; 40];
        o[..opts.len()].copy_from_slice(opts);
        let true_size = b.len() as u64;
        let held = Held {
            key,
            seg0: seg,
            count: 1,
            len: seg.ip_len(),
            mss: len,
            next_seq: seg.seq.wrapping_add(len),
            flag_word: seg.flag_word(b),
            opts: o,
            opts_len: opts.len() as u8,
            fixed_id: false,
            data_csum: d,
            payload: len,
            held_bytes: true_size,
            pieces: {
                let mut v = Vec::with_capacity(16);
                v.push(Frag::whole(frame));
                v
            },
        };
        self.buckets[bucket].push(held);
        self.stats.aggregated += 1;
        self.stats.payload_aggregated += u64::from(len);
        self.held_packets += 1;
        self.held_bytes += true_size;
    }

    /// `napi_gro_flush()`: every held packet goes up, bucket by bucket,
    /// oldest first.
    pub fn flush_all<F: FnMut(Skb<B>)>(&mut self, stack: &mut F) {
        for b in 0..GRO_HASH_BUCKETS {
            while !self.buckets[b].is_empty() {
                self.complete(b, 0, FlushReason::FlushAll, stack);
            }
        }
    }

    fn pass<F: FnMut(Skb<B>)>(&mut self, frame: B, reason: PassReason, stack: &mut F) {
        self.stats.pass(reason);
        stack(Skb::Frame(frame));
    }

    /// `napi_gro_complete()`: a held packet goes up, its headers rewritten
    /// when it holds more than one segment (`inet_gro_complete()`,
    /// `tcp4_gro_complete()`, `ipv6_gro_complete()`).
    fn complete<F: FnMut(Skb<B>)>(
        &mut self,
        bucket: usize,
        k: usize,
        reason: FlushReason,
        stack: &mut F,
    ) {
        let mut p = self.buckets[bucket].remove(k);
        self.held_packets -= u64::from(p.count);
        self.held_bytes -= p.held_bytes;
        self.stats.flush(reason, p.count);
        if p.count == 1 {
            return stack(Skb::Frame(p.pieces.pop().expect("held frame").buf));
        }
        let seg0 = p.seg0;
        let head = merged_head(
            p.pieces[0].bytes(),
            &seg0,
            p.payload,
            TcpRewrite {
                ack: seg0.ack,
                window: seg0.window,
                tsecr: None,
                flags_or: (p.flag_word >> 16) as u8 & (tcp_flag::FIN | tcp_flag::PSH),
            },
            p.data_csum,
        );
        p.pieces[0].off = u32::from(seg0.data_off);
        p.pieces[0].len = seg0.payload_len();
        stack(Skb::Aggregate(Aggregate {
            head,
            frags: p.pieces,
            segs: p.count,
            gso_size: p.mss,
        }));
    }

    /// Checks the invariants of the module header.
    pub fn assert_invariants(&self) {
        let mut held = 0u64;
        let mut bytes = 0u64;
        for (b, list) in self.buckets.iter().enumerate() {
            assert!(list.len() <= self.cfg.max_held);
            for p in list {
                held += u64::from(p.count);
                bytes += p.held_bytes;
                assert_eq!(p.next_seq, p.seg0.seq.wrapping_add(p.payload));
                assert_eq!(
                    p.len,
                    u32::from(p.seg0.data_off - p.seg0.l3_off) + p.payload
                );
                assert!(p.len < self.cfg.gro_max_size);
                assert_eq!(
                    (FxBuildHasher.hash_one(p.key) as usize) % GRO_HASH_BUCKETS,
                    b
                );
            }
        }
        assert_eq!(held, self.held_packets);
        assert_eq!(bytes, self.held_bytes);
        self.stats.assert_invariants(held);
    }
}

/// `tcp_gro_receive()`'s flush computation (with the IP layer's
/// `inet_gro_flush()` / `ipv6_gro_flush()` and `skb_gro_receive()`'s size
/// check) for a segment of `p`'s flow: why it cannot merge, if it cannot.
fn mismatch<B>(
    p: &mut Held<B>,
    seg: &Segment,
    frame: &[u8],
    gro_max_size: u32,
) -> Option<FlushReason> {
    let flags = seg.flags;
    let mut bad = flags & tcp_flag::CWR != 0;
    let mask = !(u32::from(tcp_flag::CWR | tcp_flag::FIN | tcp_flag::PSH) << 16);
    bad |= (seg.flag_word(frame) ^ p.flag_word) & mask != 0;
    bad |= seg.ack != p.seg0.ack;
    bad |= seg.options(frame) != &p.opts[..usize::from(p.opts_len)];
    bad |= network_flush(p, seg);
    let len = seg.payload_len();
    bad |= len.wrapping_sub(1) >= p.mss;
    // All of these set `flush` together in the kernel; klab names the
    // sequence gap first, as the most telling.
    if p.next_seq != seg.seq {
        return Some(FlushReason::OutOfOrder);
    }
    if bad {
        return Some(FlushReason::Ineligible);
    }
    if p.len + len >= gro_max_size {
        return Some(FlushReason::SizeLimit);
    }
    None
}

/// `inet_gro_flush()` (6.10 form) and `ipv6_gro_flush()`: the IP fields
/// that must agree between a held packet and a new segment.
fn network_flush<B>(p: &mut Held<B>, seg: &Segment) -> bool {
    match (&p.seg0.ip, &seg.ip) {
        (Ip::V4(a), Ip::V4(b)) => {
            let df = b.frag_off & IP_DF;
            if a.ttl != b.ttl || a.tos != b.tos || df != a.frag_off & IP_DF {
                return true;
            }
            let ipid_offset = b.id.wrapping_sub(a.id);
            if p.count == 1 && df != 0 && ipid_offset == 0 {
                p.fixed_id = true;
            }
            if p.fixed_id && df != 0 {
                ipid_offset != 0
            } else {
                ipid_offset != p.count as u16
            }
        }
        (Ip::V6(a), Ip::V6(b)) => {
            (a.first_word ^ b.first_word) & 0x0ff0_0000 != 0 || a.hop_limit != b.hop_limit
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Seg, Up};
    use crate::wire::tcp_flag::*;

    fn gro() -> GroMgr<Vec<u8>> {
        GroMgr::new(GroConfig::default(), LinkType::Ethernet).unwrap()
    }

    #[track_caller]
    fn run(m: &mut GroMgr<Vec<u8>>, segs: &[Seg]) -> Up {
        let mut up = Up::default();
        for s in segs {
            m.receive(s.frame(), &mut up.take());
            m.assert_invariants();
        }
        m.flush_all(&mut up.take());
        m.assert_invariants();
        up
    }

    fn train(first: Seg, n: usize) -> Vec<Seg> {
        let mut v = vec![first];
        while v.len() < n {
            let next = v.last().unwrap().next();
            v.push(next);
        }
        v
    }

    /// `b` after `a` in GRO and in LRO: segments per packet handed up.
    fn both(a: Seg, b: Seg) -> (Vec<u32>, Vec<u32>) {
        let mut g = gro();
        let gs = run(&mut g, &[a.clone(), b.clone()]).segs();
        let mut l: crate::lro::LroMgr<Vec<u8>> =
            crate::lro::LroMgr::new(crate::lro::LroConfig::default(), LinkType::Ethernet).unwrap();
        let mut up = Up::default();
        for s in [a, b] {
            l.receive_skb(s.frame(), &mut up.take());
        }
        l.flush_all(&mut up.take());
        (gs, up.segs())
    }

    #[test]
    fn identical_headers_merge() {
        let mut m = gro();
        let up = run(&mut m, &train(Seg::default(), 4));
        assert_eq!(up.segs(), vec![4]);
        let f = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, f).unwrap();
        assert_eq!(seg.ip_len(), 20 + 32 + 400);
        assert!(wire::verify_ip_checksum(&seg, f));
        assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
    }

    #[test]
    fn gro_is_stricter_than_lro_on_timestamps_window_and_ack() {
        let a = Seg::default();
        // A new TSval: any option byte differing stops GRO; LRO merges.
        let b = Seg {
            ts: Some((101, 900)),
            ..a.next()
        };
        assert_eq!(both(a.clone(), b), (vec![1, 1], vec![2]));
        // A new TSecr.
        let b = Seg {
            ts: Some((100, 901)),
            ..a.next()
        };
        assert_eq!(both(a.clone(), b), (vec![1, 1], vec![2]));
        // A window update: GRO compares the whole flag word.
        let b = Seg {
            window: 501,
            ..a.next()
        };
        assert_eq!(both(a.clone(), b), (vec![1, 1], vec![2]));
        // A new ACK.
        let b = Seg {
            ack: 5001,
            ..a.next()
        };
        assert_eq!(both(a.clone(), b), (vec![1, 1], vec![2]));
        // Options present then absent: GRO flushes (doff differs);
        // LRO takes the segment (doff 5 is eligible).
        let b = Seg {
            ts: None,
            ..a.next()
        };
        assert_eq!(both(a, b), (vec![1, 1], vec![2]));
    }

    #[test]
    fn lro_is_stricter_than_gro_on_psh_and_ecn() {
        let a = Seg::default();
        // PSH: GRO merges, ORs PSH into the header and flushes at once.
        let b = Seg {
            flags: ACK | PSH,
            ..a.next()
        };
        let mut g = gro();
        let up = run(&mut g, &[a.clone(), b]);
        assert_eq!(up.segs(), vec![2]);
        assert_eq!(g.stats().flushes(FlushReason::GroFinal), 1);
        let seg = wire::parse(LinkType::Ethernet, &up.pkts[0].1).unwrap();
        assert_eq!(seg.flags, ACK | PSH);
        // ECE on every segment: GRO merges (flag words equal); LRO never.
        let a = Seg {
            flags: ACK | ECE,
            ..Seg::default()
        };
        assert_eq!(both(a.clone(), a.next()), (vec![2], vec![1, 1]));
    }

    #[test]
    fn a_short_segment_ends_the_aggregate_and_a_longer_one_starts_anew() {
        let a = Seg::default();
        let short = Seg {
            payload: 60,
            ..a.next().next()
        };
        let mut g = gro();
        let up = run(&mut g, &[a.clone(), a.next(), short.clone(), short.next()]);
        // [a, a', short] flushed at the short one (len < mss); then the next.
        assert_eq!(up.segs(), vec![3, 1]);
        let long = Seg {
            payload: 150,
            ..a.next()
        };
        let mut g = gro();
        let up = run(&mut g, &[a, long.clone(), long.next()]);
        // 150 > mss 100: the held goes up, the long one is held anew.
        assert_eq!(up.segs(), vec![1, 2]);
        assert_eq!(g.stats().flushes(FlushReason::Ineligible), 1);
    }

    #[test]
    fn the_ip_id_must_count_up_or_stay_fixed_with_df() {
        let a = Seg::default();
        let same_id = Seg {
            id: a.id,
            ..a.next()
        };
        // DF and a fixed ID: atomic, merges; the third must keep the ID.
        let mut g = gro();
        let up = run(
            &mut g,
            &[
                a.clone(),
                same_id.clone(),
                Seg {
                    id: a.id,
                    ..same_id.next()
                },
            ],
        );
        assert_eq!(up.segs(), vec![3]);
        // Without DF a fixed ID is not allowed.
        let nodf = Seg {
            df: false,
            ..a.clone()
        };
        let mut g = gro();
        let up = run(
            &mut g,
            &[
                nodf.clone(),
                Seg {
                    id: nodf.id,
                    ..nodf.next()
                },
            ],
        );
        assert_eq!(up.segs(), vec![1, 1]);
        // An ID jump.
        let mut g = gro();
        let up = run(&mut g, &[a.clone(), Seg { id: 50, ..a.next() }]);
        assert_eq!(up.segs(), vec![1, 1]);
        // TTL and TOS must match.
        let (gs, _) = both(
            a.clone(),
            Seg {
                ttl: 63,
                ..a.next()
            },
        );
        assert_eq!(gs, vec![1, 1]);
        let (gs, _) = both(a.clone(), Seg { tos: 4, ..a.next() });
        assert_eq!(gs, vec![1, 1]);
    }

    #[test]
    fn pure_acks_and_control_segments_go_up_alone() {
        let a = Seg::default();
        let mut g = gro();
        let up = run(
            &mut g,
            &[
                a.clone(),
                Seg {
                    payload: 0,
                    ..a.next()
                },
                Seg {
                    flags: ACK | SYN,
                    ..a.next()
                },
            ],
        );
        assert_eq!(up.segs(), vec![1, 1, 1]);
        assert_eq!(g.stats().passed(PassReason::NoPayload), 1);
        assert_eq!(g.stats().passed(PassReason::TcpFlags), 1);
    }

    #[test]
    fn an_aggregate_stops_below_64_kib() {
        // p.len + len >= 65536 fails: 52 + 45 * 1448 = 65212 holds, one
        // more segment would reach 66660.
        let mut g = gro();
        let up = run(
            &mut g,
            &train(
                Seg {
                    payload: 1448,
                    ..Seg::default()
                },
                46,
            ),
        );
        assert_eq!(up.segs(), vec![45, 1]);
        assert_eq!(g.stats().flushes(FlushReason::SizeLimit), 1);
    }

    #[test]
    fn a_full_bucket_evicts_its_oldest() {
        // 100 flows, one segment each: every bucket past MAX_GRO_SKBS
        // evicts once per extra flow.
        let segs: Vec<Seg> = (0..100)
            .map(|p| Seg {
                sport: 1000 + p,
                ..Seg::default()
            })
            .collect();
        let mut per_bucket = [0usize; GRO_HASH_BUCKETS];
        for s in &segs {
            let f = s.frame();
            let seg = wire::parse(LinkType::Ethernet, &f).unwrap();
            let key = GroKey::of(&seg, &f);
            per_bucket[(FxBuildHasher.hash_one(key) as usize) % GRO_HASH_BUCKETS] += 1;
        }
        let want: usize = per_bucket
            .iter()
            .map(|n| n.saturating_sub(MAX_GRO_SKBS))
            .sum();
        assert!(want > 0);
        let mut g = gro();
        run(&mut g, &segs);
        assert_eq!(g.stats().flushes(FlushReason::Evicted), want as u64);
        assert_eq!(g.stats().flushes(FlushReason::FlushAll), 64);
    }

    #[test]
    fn ipv6_merges_and_its_payload_length_is_rewritten() {
        let a = Seg {
            v6: true,
            ..Seg::default()
        };
        let mut g = gro();
        let up = run(&mut g, &train(a, 3));
        assert_eq!(up.segs(), vec![3]);
        let f = &up.pkts[0].1;
        let seg = wire::parse(LinkType::Ethernet, f).unwrap();
        let Ip::V6(v6) = seg.ip else { panic!() };
        assert_eq!(v6.payload_len, 32 + 300);
        assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
        // A different hop limit stops the merge.
        let b = Seg {
            v6: true,
            ..Seg::default()
        };
        let mut g = gro();
        assert_eq!(
            run(&mut g, &[b.clone(), Seg { ttl: 1, ..b.next() }]).segs(),
            vec![1, 1]
        );
    }

    /// Issue 18 in GRO: partial checksum fields (`CHECKSUM_PARTIAL`, as a
    /// capture on a Linux sender holds them) are not re-verified, over IPv4
    /// and IPv6; the aggregate gets a full checksum; a field one off the
    /// pseudo-header sum is bad.
    #[test]
    fn issue_18_partial_checksums_merge_over_ipv4_and_ipv6() {
        for v6 in [false, true] {
            let t: Vec<Seg> = train(
                Seg {
                    v6,
                    payload: 101,
                    partial_csum: true,
                    ..Seg::default()
                },
                3,
            );
            for checksum in [Checksum::Verify, Checksum::Trust] {
                let mut g = GroMgr::new(
                    GroConfig {
                        checksum,
                        ..GroConfig::default()
                    },
                    LinkType::Ethernet,
                )
                .unwrap();
                let up = run(&mut g, &t);
                assert_eq!(up.segs(), vec![3], "v6 {v6} {checksum:?}");
                assert_eq!(g.stats().csum_partial, 3);
                assert_eq!(g.stats().csum_verified, 0);
                let f = &up.pkts[0].1;
                let seg = wire::parse(LinkType::Ethernet, f).unwrap();
                assert_eq!(seg.payload_len(), 303);
                assert!(wire::verify_tcp_checksum(&seg, &[f]).is_some());
            }
            let mut bad = t[1].frame();
            let seg = wire::parse(LinkType::Ethernet, &bad).unwrap();
            let o = usize::from(seg.tcp_off) + 16;
            let field = wire::partial_check_field(&seg).wrapping_sub(1);
            bad[o..o + 2].copy_from_slice(&field.to_be_bytes());
            let mut g = gro();
            let mut up = Up::default();
            for f in [t[0].frame(), bad, t[2].frame()] {
                g.receive(f, &mut up.take());
            }
            g.flush_all(&mut up.take());
            g.assert_invariants();
            assert_eq!(up.segs(), vec![1, 1, 1], "v6 {v6}");
            assert_eq!(g.stats().passed(PassReason::BadChecksum), 1);
            assert_eq!(g.stats().csum_partial, 2);
        }
    }

    #[test]
    fn a_gap_flushes_the_held_packet_and_holds_the_new_one() {
        // Unlike LRO, GRO holds the out-of-order segment as a new packet.
        let t = train(Seg::default(), 5);
        let mut g = gro();
        let up = run(
            &mut g,
            &[t[0].clone(), t[1].clone(), t[3].clone(), t[4].clone()],
        );
        assert_eq!(up.segs(), vec![2, 2]);
        assert_eq!(g.stats().flushes(FlushReason::OutOfOrder), 1);
    }

    #[test]
    fn padded_and_ip_options_frames_flush_their_flow_first() {
        let t = train(Seg::default(), 3);
        let mut g = gro();
        let up = run(
            &mut g,
            &[
                t[0].clone(),
                Seg {
                    pad: 4,
                    ..t[1].clone()
                },
                t[2].clone(),
            ],
        );
        assert_eq!(up.segs(), vec![1, 1, 1]);
        assert_eq!(g.stats().passed(PassReason::Padded), 1);
        let mut g = gro();
        let up = run(
            &mut g,
            &[
                t[0].clone(),
                Seg {
                    ip_opts: true,
                    ..t[1].clone()
                },
            ],
        );
        assert_eq!(up.segs(), vec![1, 1]);
        assert_eq!(g.stats().passed(PassReason::IpOptions), 1);
    }
}
