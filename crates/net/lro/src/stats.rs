//! Statistics: inet_lro's `struct net_lro_stats` (aggregated, flushed,
//! no_desc) and the counts klab adds: why each packet passed through
//! unmerged, why each aggregate was flushed, and what the TCP checksum
//! fields held (verified in full, or partial: only the pseudo-header sum).
//!
//! Invariants (checked by [`Stats::assert_invariants`] once every held
//! packet has been flushed):
//! `packets_in == aggregated + Σ passed` (every packet either joined a
//! descriptor or went up alone), `packets_out == flushed + Σ passed`,
//! `flushed == Σ flush_reasons`, and `csum_verified + csum_partial +
//! passed[BadChecksum] <= packets_in` (a checksum is judged at most once
//! per packet).

/// Why a packet went up the stack on its own instead of joining an
/// aggregate. The first group comes from parsing ([`crate::wire::parse`]);
/// the rest from the eligibility rules of LRO (`lro_tcp_ip_check()`) and
/// GRO (`inet_gro_receive()`, `tcp_gro_receive()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PassReason {
    /// Shorter than its headers, or its IP length claims more bytes than
    /// were captured.
    Truncated,
    /// A header field that makes no sense (IHL < 5, data offset < 5, IP
    /// total length < header length, ...).
    Malformed,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IPv4 fragment.
    IpFragment,
    /// IPv6 with extension headers before TCP.
    Ipv6ExtHeaders,
    /// IPv6 in LRO mode: inet_lro aggregates IPv4 only.
    Ipv6,
    /// The TCP checksum (or the IPv4 header checksum) is wrong, and the
    /// TCP field is not a partial one either (see
    /// [`crate::wire::check_tcp_checksum`]): a NIC would not mark it
    /// `CHECKSUM_UNNECESSARY`, so the driver does not hand it to LRO, and
    /// GRO's `skb_gro_checksum_validate()` fails.
    BadChecksum,
    /// `tot_len != len`: the frame is padded past the IP packet.
    Padded,
    /// No TCP payload (a pure ACK or a bare control segment).
    NoPayload,
    /// IPv4 options (`ihl != 5`).
    IpOptions,
    /// CWR, ECE, URG, RST, SYN or FIN set, or ACK clear (LRO); URG, PSH,
    /// RST, SYN or FIN on a packet with nothing held (GRO).
    TcpFlags,
    /// The IP ECN field says Congestion Experienced.
    EcnCe,
    /// TCP options other than the aligned timestamp (`doff` not 5 or 8, or
    /// the 12 option bytes are not NOP, NOP, TIMESTAMP).
    TcpOptions,
    /// TSval is before the one the descriptor holds.
    TsvalOrder,
    /// TSecr is zero.
    TsecrZero,
    /// The sequence number is not the one the aggregate expects next.
    OutOfOrder,
    /// No free descriptor (`no_desc`).
    NoDesc,
}

impl PassReason {
    /// Every reason, in declaration order.
    pub const ALL: [PassReason; 18] = [
        PassReason::Truncated,
        PassReason::Malformed,
        PassReason::NotIp,
        PassReason::NotTcp,
        PassReason::IpFragment,
        PassReason::Ipv6ExtHeaders,
        PassReason::Ipv6,
        PassReason::BadChecksum,
        PassReason::Padded,
        PassReason::NoPayload,
        PassReason::IpOptions,
        PassReason::TcpFlags,
        PassReason::EcnCe,
        PassReason::TcpOptions,
        PassReason::TsvalOrder,
        PassReason::TsecrZero,
        PassReason::OutOfOrder,
        PassReason::NoDesc,
    ];

    /// A short name for tables (`no_payload`).
    pub fn name(self) -> &'static str {
        match self {
            PassReason::Truncated => "truncated",
            PassReason::Malformed => "malformed",
            PassReason::NotIp => "not_ip",
            PassReason::NotTcp => "not_tcp",
            PassReason::IpFragment => "ip_fragment",
            PassReason::Ipv6ExtHeaders => "ipv6_ext_headers",
            PassReason::Ipv6 => "ipv6",
            PassReason::BadChecksum => "bad_checksum",
            PassReason::Padded => "padded",
            PassReason::NoPayload => "no_payload",
            PassReason::IpOptions => "ip_options",
            PassReason::TcpFlags => "tcp_flags",
            PassReason::EcnCe => "ecn_ce",
            PassReason::TcpOptions => "tcp_options",
            PassReason::TsvalOrder => "tsval_order",
            PassReason::TsecrZero => "tsecr_zero",
            PassReason::OutOfOrder => "out_of_order",
            PassReason::NoDesc => "no_desc",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why an aggregate (or a single held packet) was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlushReason {
    /// `pkt_aggr_cnt >= max_aggr` (skb path) or `nr_frags >= max_aggr`
    /// (frags path).
    MaxAggr,
    /// The aggregate reached the size limit (`parent->len > 65535 - mtu`
    /// in LRO, `gro_max_size` in GRO).
    SizeLimit,
    /// A packet of the flow arrived out of order.
    OutOfOrder,
    /// A packet of the flow was not eligible (or, in GRO, did not match
    /// the held header) and went up after it.
    Ineligible,
    /// GRO: the last merged segment was short, or carried PSH/FIN/URG/RST/SYN.
    GroFinal,
    /// GRO: the bucket held `MAX_GRO_SKBS` packets and this was the oldest.
    Evicted,
    /// `flush_all` (the end of a NAPI poll).
    FlushAll,
    /// `flush_pkt` for this flow.
    FlushPkt,
}

impl FlushReason {
    /// Every reason, in declaration order.
    pub const ALL: [FlushReason; 8] = [
        FlushReason::MaxAggr,
        FlushReason::SizeLimit,
        FlushReason::OutOfOrder,
        FlushReason::Ineligible,
        FlushReason::GroFinal,
        FlushReason::Evicted,
        FlushReason::FlushAll,
        FlushReason::FlushPkt,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            FlushReason::MaxAggr => "max_aggr",
            FlushReason::SizeLimit => "size_limit",
            FlushReason::OutOfOrder => "out_of_order",
            FlushReason::Ineligible => "ineligible",
            FlushReason::GroFinal => "gro_final",
            FlushReason::Evicted => "evicted",
            FlushReason::FlushAll => "flush_all",
            FlushReason::FlushPkt => "flush_pkt",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counters of one manager.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stats {
    /// Packets received.
    pub packets_in: u64,
    /// Packets handed up the stack (aggregates and pass-throughs).
    pub packets_out: u64,
    /// Packets taken into a descriptor (`aggregated`: a session start or
    /// an append).
    pub aggregated: u64,
    /// Descriptors delivered (`flushed`), one packet or many.
    pub flushed: u64,
    /// Deliveries of more than one packet (headers rewritten).
    pub merged: u64,
    /// No free descriptor (`no_desc`); these packets are also counted in
    /// `passed[NoDesc]`.
    pub no_desc: u64,
    /// TCP payload bytes received in segments that were aggregated.
    pub payload_aggregated: u64,
    /// Segments whose full TCP checksum (and IPv4 header checksum) was
    /// verified in software ([`crate::Checksum::Verify`]).
    pub csum_verified: u64,
    /// Segments whose TCP checksum field held only the folded pseudo-header
    /// sum ([`crate::wire::partial_check_field`]): sent with checksum
    /// offload and captured on the sending host before the device finished
    /// the checksum. Taken as the kernel takes a `CHECKSUM_PARTIAL` skb
    /// (`skb_csum_unnecessary()` is true, GRO does not re-verify), their
    /// payload sums read from their bytes. Counted under both checksum
    /// settings: under `Trust` the field is still looked at, because a
    /// partial field says nothing of the payload and an aggregate's
    /// checksum must not be derived from it.
    pub csum_partial: u64,
    passed: [u64; PassReason::ALL.len()],
    flush_reasons: [u64; FlushReason::ALL.len()],
}

impl Stats {
    /// Packets passed through for `reason`.
    pub fn passed(&self, reason: PassReason) -> u64 {
        self.passed[reason.index()]
    }

    /// Packets passed through for any reason.
    pub fn passed_total(&self) -> u64 {
        self.passed.iter().sum()
    }

    /// Aggregates flushed for `reason`.
    pub fn flushes(&self, reason: FlushReason) -> u64 {
        self.flush_reasons[reason.index()]
    }

    /// `(reason, count)` for every pass-through reason with a non-zero count.
    pub fn passed_nonzero(&self) -> Vec<(PassReason, u64)> {
        PassReason::ALL
            .iter()
            .map(|r| (*r, self.passed(*r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// `(reason, count)` for every flush reason with a non-zero count.
    pub fn flushes_nonzero(&self) -> Vec<(FlushReason, u64)> {
        FlushReason::ALL
            .iter()
            .map(|r| (*r, self.flushes(*r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// True when more segments failed their checksum than passed it
    /// (`passed[BadChecksum] > csum_verified + csum_partial`): most of the
    /// input was passed up unmerged for its checksums alone, the sign of a
    /// capture whose checksum fields were never finished in a form klab
    /// recognises (zeroed, or left by a device or an OS with another
    /// convention). Never true under [`crate::Checksum::Trust`], where
    /// nothing is verified.
    pub fn mostly_bad_checksums(&self) -> bool {
        self.passed(PassReason::BadChecksum) > self.csum_verified + self.csum_partial
    }

    /// Packets out per packet in: the share of per-packet stack work left
    /// (1.0 means LRO saved nothing).
    pub fn out_per_in(&self) -> f64 {
        if self.packets_in == 0 {
            1.0
        } else {
            self.packets_out as f64 / self.packets_in as f64
        }
    }

    #[inline]
    pub(crate) fn pass(&mut self, reason: PassReason) {
        self.passed[reason.index()] += 1;
        self.packets_out += 1;
    }

    #[inline]
    pub(crate) fn flush(&mut self, reason: FlushReason, segs: u32) {
        self.flush_reasons[reason.index()] += 1;
        self.flushed += 1;
        self.packets_out += 1;
        if segs > 1 {
            self.merged += 1;
        }
    }

    /// Checks the accounting identities of the module header; `held` is
    /// the number of packets still held in descriptors.
    pub fn assert_invariants(&self, held: u64) {
        assert_eq!(
            self.packets_in,
            self.aggregated + self.passed_total(),
            "every packet is aggregated or passed: {self:?}"
        );
        assert_eq!(
            self.packets_out,
            self.flushed + self.passed_total(),
            "{self:?}"
        );
        assert_eq!(
            self.flushed,
            self.flush_reasons.iter().sum::<u64>(),
            "{self:?}"
        );
        assert!(
            self.csum_verified + self.csum_partial + self.passed(PassReason::BadChecksum)
                <= self.packets_in,
            "{self:?}"
        );
        assert!(self.aggregated >= held);
        assert!(self.merged <= self.flushed);
        assert_eq!(self.no_desc, self.passed(PassReason::NoDesc));
    }
}
