//! Frames in, checked views out: the edge where untrusted bytes become a
//! [`Segment`] that the aggregation code can trust.
//!
//! A driver's `get_skb_header()` / `get_frag_header()` callback located the
//! IP and TCP headers for inet_lro and said whether the packet was IPv4 TCP
//! (`LRO_IPV4 | LRO_TCP`). [`parse`] is that callback for every link type
//! klab reads: it walks the link header (Ethernet, one 802.1Q tag, Linux
//! cooked SLL, or none for raw IP), the IPv4 or IPv6 header and the TCP
//! header with `etherparse`'s checked slices, and returns either a
//! [`Segment`] (offsets and fields, all in bounds by construction) or the
//! [`PassReason`] why the frame cannot be a TCP segment at all.
//!
//! ```text
//!  frame: | link (l3_off bytes) | IP header | TCP header | payload | pad |
//!         0                     l3_off      tcp_off      data_off  data_end
//! ```
//!
//! Invariants of a [`Segment`] `s` parsed from a frame of `n` bytes:
//! `s.l3_off < s.tcp_off < s.data_off <= s.data_end <= n`,
//! `s.data_off - s.tcp_off == 4 * s.doff`, and for IPv4
//! `s.data_end - s.l3_off == tot_len` (the IP total length; bytes after it
//! are link padding). A frame whose IP length claims more bytes than were
//! captured is [`PassReason::Truncated`].

use etherparse::{
    Ethernet2HeaderSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice,
};

use crate::csum::{Wsum, partial};
use crate::stats::PassReason;

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// TCP flag bits (byte 13 of the header).
pub mod tcp_flag {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// The link layer of a device (or of a capture file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II, optionally with one 802.1Q tag (DLT 1).
    Ethernet,
    /// Raw IPv4 or IPv6 with no link header (DLT 101, 228, 229).
    RawIp,
    /// Linux cooked capture v1 (DLT 113).
    LinuxSll,
}

impl LinkType {
    /// The link type for a pcap/pcapng DLT number, if klab reads it.
    pub fn from_dlt(dlt: u32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            101 | 228 | 229 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            _ => None,
        }
    }

    /// The DLT number klab writes for this link type.
    pub fn dlt(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
        }
    }
}

/// The IP layer of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    /// IPv4.
    V4(Ipv4),
    /// IPv6 (no extension headers: TCP follows the fixed header).
    V6(Ipv6),
}

/// The IPv4 header fields the rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Header length in 32-bit words (5 without options).
    pub ihl: u8,
    /// Type of service byte (DSCP and ECN).
    pub tos: u8,
    /// Total length field.
    pub tot_len: u16,
    /// Identification.
    pub id: u16,
    /// Flags and fragment offset (`frag_off` in `struct iphdr`).
    pub frag_off: u16,
    /// Time to live.
    pub ttl: u8,
    /// Header checksum field.
    pub check: u16,
}

/// IP_DF in `frag_off`.
pub const IP_DF: u16 = 0x4000;
/// IP_MF in `frag_off`.
pub const IP_MF: u16 = 0x2000;
/// The fragment offset bits of `frag_off`.
pub const IP_OFFSET: u16 = 0x1fff;

/// The IPv6 header fields the rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Version, traffic class and flow label (the first 32-bit word).
    pub first_word: u32,
    /// Payload length field.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
}

/// What the TCP options of a segment are, as inet_lro classifies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOpts {
    /// No options (`doff == 5`).
    None,
    /// Exactly NOP, NOP, TIMESTAMP(10) in 12 bytes (`doff == 8`): the
    /// layout Linux senders use and the only one inet_lro accepts.
    Timestamp {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Anything else (SACK blocks, a timestamp not in the aligned layout,
    /// other options).
    Other,
}

/// A TCP segment found in a frame: where its layers are and the header
/// fields the aggregation rules read. Valid by construction (see the module
/// invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the IP header (the length of the link header).
    pub l3_off: u16,
    /// The 802.1Q tag control information, when the frame carries one.
    pub vlan: Option<u16>,
    /// The IP header.
    pub ip: Ip,
    /// Offset of the TCP header.
    pub tcp_off: u16,
    /// Offset of the TCP payload.
    pub data_off: u16,
    /// End of the IP packet (payload end); bytes after it are padding.
    pub data_end: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// TCP header length in 32-bit words.
    pub doff: u8,
    /// Flag byte (`tcp_flag`).
    pub flags: u8,
    /// Window field.
    pub window: u16,
    /// Checksum field.
    pub check: u16,
    /// The options, classified.
    pub opts: TcpOpts,
}

impl Segment {
    /// TCP payload length in bytes.
    #[inline]
    pub fn payload_len(&self) -> u32 {
        self.data_end - u32::from(self.data_off)
    }

    /// TCP header length in bytes.
    #[inline]
    pub fn tcp_hdr_len(&self) -> u32 {
        u32::from(self.doff) * 4
    }

    /// The IP packet length (header, TCP header and payload).
    #[inline]
    pub fn ip_len(&self) -> u32 {
        self.data_end - u32::from(self.l3_off)
    }

    /// The TCP flag word as `tcp_flag_word()` reads it: data offset,
    /// reserved bits, flags and window in one big-endian 32-bit value.
    #[inline]
    pub fn flag_word(&self, frame: &[u8]) -> u32 {
        let o = usize::from(self.tcp_off) + 12;
        u32::from_be_bytes([frame[o], frame[o + 1], frame[o + 2], frame[o + 3]])
    }

    /// The TCP options bytes of this segment in `frame`.
    #[inline]
    pub fn options<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[usize::from(self.tcp_off) + 20..usize::from(self.data_off)]
    }

    /// The TCP payload of this segment in `frame`.
    #[inline]
    pub fn payload<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[usize::from(self.data_off)..self.data_end as usize]
    }

    /// Checks the module invariants against the frame length.
    pub fn assert_invariants(&self, frame_len: usize) {
        assert!(self.l3_off < self.tcp_off && self.tcp_off < self.data_off);
        assert!(u32::from(self.data_off) <= self.data_end);
        assert!(self.data_end as usize <= frame_len);
        assert_eq!(u32::from(self.data_off - self.tcp_off), self.tcp_hdr_len());
        if let Ip::V4(v4) = self.ip {
            assert_eq!(self.ip_len(), u32::from(v4.tot_len));
        }
    }
}

/// Parses `frame` of link type `link` down to a TCP segment.
///
/// Never panics: every offset is checked by an `etherparse` slice
/// constructor or an explicit bound before it is used.
#[inline]
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Segment, PassReason> {
    parse_head(link, frame, frame.len())
}

/// Parses a frame of `frame_len` bytes whose first bytes are `head` (the
/// first page fragment on the `lro_receive_frags` path): every header must
/// lie in `head`; the payload may run on into later fragments.
#[inline(always)]
pub fn parse_head(link: LinkType, frame: &[u8], frame_len: usize) -> Result<Segment, PassReason> {
    let (mut l3_off, mut ethertype) = match link {
        LinkType::Ethernet => {
            let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| PassReason::Truncated)?;
            (eth.slice().len(), eth.ether_type().0)
        }
        LinkType::LinuxSll => {
            // SLL v1 is a fixed 16-byte header whose last field is the
            // protocol: an EtherType from 0x0600 up, else a Linux-specific
            // number (802.3 frames, CAN, ...). etherparse's SLL view rejects
            // some ARPHRD types (loopback) outright, so only the bytes klab
            // needs are read, each through a checked `get`.
            let proto = frame.get(14..16).ok_or(PassReason::Truncated)?;
            let proto = u16::from_be_bytes([proto[0], proto[1]]);
            if proto < 0x0600 {
                return Err(PassReason::NotIp);
            }
            (16, proto)
        }
        LinkType::RawIp => match frame.first().map(|b| b >> 4) {
            Some(4) => (0, ETH_P_IP),
            Some(6) => (0, ETH_P_IPV6),
            Some(_) => return Err(PassReason::NotIp),
            None => return Err(PassReason::Truncated),
        },
    };
    let mut vlan = None;
    if ethertype == ETH_P_8021Q {
        let tag = SingleVlanHeaderSlice::from_slice(&frame[l3_off..])
            .map_err(|_| PassReason::Truncated)?;
        let s = tag.slice();
        vlan = Some(u16::from_be_bytes([s[0], s[1]]));
        ethertype = tag.ether_type().0;
        l3_off += s.len();
    }
    let l3 = &frame[l3_off..];
    let l3_len = frame_len.checked_sub(l3_off).ok_or(PassReason::Truncated)?;
    let (ip, tcp_off, data_end) = match ethertype {
        ETH_P_IP => parse_v4(l3, l3_len, l3_off)?,
        ETH_P_IPV6 => parse_v6(l3, l3_len, l3_off)?,
        _ => return Err(PassReason::NotIp),
    };
    let tcp_bytes = &frame[tcp_off..data_end.min(frame.len())];
    let th = TcpHeaderSlice::from_slice(tcp_bytes).map_err(|e| match e {
        etherparse::err::tcp::HeaderSliceError::Len(_) => PassReason::Truncated,
        etherparse::err::tcp::HeaderSliceError::Content(_) => PassReason::Malformed,
    })?;
    let doff = th.data_offset();
    let opts_bytes = th.options();
    let opts = match opts_bytes {
        [] => TcpOpts::None,
        [1, 1, 8, 10, a, b, c, d, e, f, g, h] => TcpOpts::Timestamp {
            tsval: u32::from_be_bytes([*a, *b, *c, *d]),
            tsecr: u32::from_be_bytes([*e, *f, *g, *h]),
        },
        _ => TcpOpts::Other,
    };
    let hs = th.slice();
    let seg = Segment {
        l3_off: narrow(l3_off)?,
        vlan,
        ip,
        tcp_off: narrow(tcp_off)?,
        data_off: narrow(tcp_off + hs.len())?,
        data_end: u32::try_from(data_end).map_err(|_| PassReason::Malformed)?,
        sport: th.source_port(),
        dport: th.destination_port(),
        seq: th.sequence_number(),
        ack: th.acknowledgment_number(),
        doff,
        flags: hs[13],
        window: th.window_size(),
        check: th.checksum(),
        opts,
    };
    Ok(seg)
}

fn narrow(v: usize) -> Result<u16, PassReason> {
    u16::try_from(v).map_err(|_| PassReason::Malformed)
}

/// IPv4 header at `l3` (frame offset `l3_off`, `l3_len` bytes from there
/// to the end of the frame): the header, the TCP offset and the packet end.
#[inline(always)]
fn parse_v4(l3: &[u8], l3_len: usize, l3_off: usize) -> Result<(Ip, usize, usize), PassReason> {
    let h = Ipv4HeaderSlice::from_slice(l3).map_err(|e| match e {
        etherparse::err::ipv4::HeaderSliceError::Len(_) => PassReason::Truncated,
        etherparse::err::ipv4::HeaderSliceError::Content(_) => PassReason::Malformed,
    })?;
    let hl = h.slice().len();
    let tot_len = usize::from(h.total_len());
    if tot_len < hl {
        return Err(PassReason::Malformed);
    }
    if tot_len > l3_len {
        return Err(PassReason::Truncated);
    }
    if h.protocol().0 != IPPROTO_TCP {
        return Err(PassReason::NotTcp);
    }
    let s = h.slice();
    let frag_off = u16::from_be_bytes([s[6], s[7]]);
    if frag_off & (IP_MF | IP_OFFSET) != 0 {
        // A fragment has no TCP header of its own (or only the first
        // part of one): the driver's header callback cannot say LRO_TCP.
        return Err(PassReason::IpFragment);
    }
    let v4 = Ipv4 {
        src: h.source(),
        dst: h.destination(),
        ihl: h.ihl(),
        tos: s[1],
        tot_len: h.total_len(),
        id: h.identification(),
        frag_off,
        ttl: h.ttl(),
        check: h.header_checksum(),
    };
    Ok((Ip::V4(v4), l3_off + hl, l3_off + tot_len))
}

/// IPv6 header at `l3`: TCP must follow the fixed header directly.
fn parse_v6(l3: &[u8], l3_len: usize, l3_off: usize) -> Result<(Ip, usize, usize), PassReason> {
    let h = Ipv6HeaderSlice::from_slice(l3).map_err(|e| match e {
        etherparse::err::ipv6::HeaderSliceError::Len(_) => PassReason::Truncated,
        etherparse::err::ipv6::HeaderSliceError::Content(_) => PassReason::Malformed,
    })?;
    let plen = usize::from(h.payload_length());
    if plen == 0 {
        // A jumbogram (payload length in a hop-by-hop option) or an empty
        // packet: neither is a plain TCP segment.
        return Err(PassReason::Malformed);
    }
    if 40 + plen > l3_len {
        return Err(PassReason::Truncated);
    }
    match h.next_header().0 {
        IPPROTO_TCP => {}
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 => {
            return Err(PassReason::Ipv6ExtHeaders);
        }
        _ => return Err(PassReason::NotTcp),
    }
    let s = h.slice();
    let v6 = Ipv6 {
        src: h.source(),
        dst: h.destination(),
        first_word: u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        payload_len: h.payload_length(),
        hop_limit: h.hop_limit(),
    };
    Ok((Ip::V6(v6), l3_off + 40, l3_off + 40 + plen))
}

/// What a segment's TCP checksum field holds, judged against its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpCsum {
    /// A full checksum that verifies: what a NIC marks
    /// `CHECKSUM_UNNECESSARY`. Carries the payload's partial sum.
    Full(Wsum),
    /// Only the folded pseudo-header sum: the sender's stack left the
    /// checksum for its NIC to finish (`CHECKSUM_PARTIAL`), and the capture
    /// was taken before that happened (see [`partial_check_field`]).
    /// Carries the payload's partial sum, computed from its bytes.
    Partial(Wsum),
    /// Neither: a corrupt segment.
    Bad,
}

/// The pseudo-header sum of `seg` (`csum_tcpudp_nofold()` for IPv4,
/// `csum_ipv6_magic()` before its fold for IPv6): addresses, protocol and
/// the TCP length (header and payload).
#[inline]
pub fn pseudo_sum(seg: &Segment) -> Wsum {
    let len = seg.data_end - u32::from(seg.tcp_off);
    match &seg.ip {
        Ip::V4(v4) => crate::csum::pseudo_v4(v4.src, v4.dst, IPPROTO_TCP, len),
        Ip::V6(v6) => crate::csum::pseudo_v6(&v6.src, &v6.dst, IPPROTO_TCP, len),
    }
}

/// The checksum field a Linux sender leaves in a segment it hands to a
/// device with checksum offload: the folded pseudo-header sum, not
/// complemented.
///
/// Mirrors net/ipv4/tcp_ipv4.c `__tcp_v4_send_check()` (and
/// net/ipv6/tcp_ipv6.c `__tcp_v6_send_check()`):
/// `th->check = ~tcp_v4_check(skb->len, saddr, daddr, 0)`, where
/// `tcp_v4_check()` is `csum_tcpudp_magic()`, which is
/// `csum_fold(csum_tcpudp_nofold(...))` (include/net/checksum.h), and
/// `csum_fold()` complements the folded sum; the two complements cancel.
/// `skb->csum_start` / `csum_offset` then tell the device (or
/// `skb_checksum_help()`) to sum from the TCP header to the end, this
/// field included, and store the complement there. GSO keeps the form per
/// segment (`tcp_gso_segment()` adjusts the field for each segment's
/// length). A capture taken on the sending host (tcpdump sees the packet
/// before the device) records this field, for every segment, pure ACKs
/// included.
#[inline]
pub fn partial_check_field(seg: &Segment) -> u16 {
    pseudo_sum(seg).fold()
}

/// Judges the TCP checksum of `seg` in a frame given as consecutive chunks
/// (one chunk for a whole frame, several for page fragments): what a NIC
/// does before it marks a packet `CHECKSUM_UNNECESSARY`, and what a
/// packet handed over with `CHECKSUM_PARTIAL` would show.
///
/// The rule, in order: the sum of pseudo header, TCP header (field
/// included) and payload folds to `0xffff` → [`TcpCsum::Full`]; else the
/// field equals [`partial_check_field`] → [`TcpCsum::Partial`]; else
/// [`TcpCsum::Bad`]. A capture does not record the sender's `ip_summed`,
/// so a segment whose field was corrupted into exactly its pseudo-header
/// sum (one corruption in 65,536) passes for partial, as it would in the
/// kernel had it been handed over with `CHECKSUM_PARTIAL`. A full
/// checksum that also happens to equal the pseudo-header sum is `Full`.
/// Both verdicts carry the payload's sum from its bytes, so nothing
/// downstream depends on which one it was.
#[inline]
pub fn check_tcp_checksum(seg: &Segment, chunks: &[&[u8]]) -> TcpCsum {
    let Some((hdr, data)) = tcp_sums(seg, chunks) else {
        return TcpCsum::Bad;
    };
    let pseudo = pseudo_sum(seg);
    if pseudo.csum_add(hdr).csum_add(data).fold() == 0xffff {
        TcpCsum::Full(data)
    } else if seg.check == pseudo.fold() {
        TcpCsum::Partial(data)
    } else {
        TcpCsum::Bad
    }
}

/// The partial sums of the TCP header (checksum field included) and of
/// the payload of `seg`, over a frame given as consecutive chunks; `None`
/// when the chunks end before the payload does.
#[inline]
pub fn tcp_sums(seg: &Segment, chunks: &[&[u8]]) -> Option<(Wsum, Wsum)> {
    let tcp_off = usize::from(seg.tcp_off);
    let data_off = usize::from(seg.data_off);
    let data_end = seg.data_end as usize;
    let mut hdr = Wsum::ZERO;
    let mut data = Wsum::ZERO;
    let mut base = 0usize;
    for chunk in chunks {
        let end = base + chunk.len();
        // Header bytes of this chunk.
        let (hs, he) = (tcp_off.max(base), data_off.min(end));
        if hs < he {
            hdr = hdr.block_add(
                partial(&chunk[hs - base..he - base], Wsum::ZERO),
                hs - tcp_off,
            );
        }
        let (ds, de) = (data_off.max(base), data_end.min(end));
        if ds < de {
            data = data.block_add(
                partial(&chunk[ds - base..de - base], Wsum::ZERO),
                ds - data_off,
            );
        }
        base = end;
    }
    (base >= data_end).then_some((hdr, data))
}

/// Verifies the full TCP checksum of `seg` (see [`check_tcp_checksum`]):
/// the payload's partial sum when it is valid, `None` for a partial or a
/// bad one.
pub fn verify_tcp_checksum(seg: &Segment, chunks: &[&[u8]]) -> Option<Wsum> {
    match check_tcp_checksum(seg, chunks) {
        TcpCsum::Full(d) => Some(d),
        TcpCsum::Partial(_) | TcpCsum::Bad => None,
    }
}

/// Verifies the IPv4 header checksum (`ip_fast_csum(iph, ihl) == 0`);
/// IPv6 has none.
pub fn verify_ip_checksum(seg: &Segment, head: &[u8]) -> bool {
    match seg.ip {
        Ip::V4(_) => {
            crate::csum::ip_header(&head[usize::from(seg.l3_off)..usize::from(seg.tcp_off)]) == 0
        }
        Ip::V6(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 74-byte frame written out by hand: Ethernet, IPv4 (DF, ID 7, TTL
    /// 64, checksum 26b3), TCP 40000 > 80, seq 1000, ack 5000, PSH|ACK,
    /// window 500, checksum 006c, NOP NOP TS(100, 900), payload "klablro!".
    #[rustfmt::skip]
    const FIXTURE: [u8; 74] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x3c, 0x00, 0x07, 0x40, 0x00, 0x40, 0x06, 0x26, 0xb3,
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x13, 0x88,
        0x80, 0x18, 0x01, 0xf4, 0x00, 0x6c, 0x00, 0x00,
        0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x03, 0x84,
        b'k', b'l', b'a', b'b', b'l', b'r', b'o', b'!',
    ];

    #[test]
    fn the_fixture_parses_to_its_fields() {
        let s = parse(LinkType::Ethernet, &FIXTURE).unwrap();
        s.assert_invariants(FIXTURE.len());
        assert_eq!(
            (s.l3_off, s.tcp_off, s.data_off, s.data_end),
            (14, 34, 66, 74)
        );
        assert_eq!((s.sport, s.dport, s.seq, s.ack), (40000, 80, 1000, 5000));
        assert_eq!((s.doff, s.flags, s.window, s.check), (8, 0x18, 500, 0x006c));
        assert_eq!(
            s.opts,
            TcpOpts::Timestamp {
                tsval: 100,
                tsecr: 900
            }
        );
        let Ip::V4(v4) = s.ip else { panic!("not v4") };
        assert_eq!(
            (v4.ihl, v4.tot_len, v4.id, v4.frag_off, v4.ttl),
            (5, 60, 7, IP_DF, 64)
        );
        assert_eq!(s.payload(&FIXTURE), b"klablro!");
        assert!(verify_ip_checksum(&s, &FIXTURE));
        let data = verify_tcp_checksum(&s, &[&FIXTURE]).unwrap();
        assert_eq!(
            data,
            crate::csum::partial(b"klablro!", crate::csum::Wsum::ZERO)
        );
        // lro_tcp_data_csum() derives the same sum from the check field.
        assert_eq!(
            crate::skb::data_csum_from_check(&s, &FIXTURE, pseudo_sum(&s)).fold(),
            data.fold()
        );
        // Split into page fragments anywhere: the same checksum.
        for cut in [1, 40, 66, 67, 73] {
            let (a, b) = FIXTURE.split_at(cut);
            assert!(verify_tcp_checksum(&s, &[a, b]).is_some(), "cut {cut}");
        }
    }

    #[test]
    fn every_truncation_of_the_fixture_is_refused_without_panic() {
        for n in 0..FIXTURE.len() {
            let r = parse(LinkType::Ethernet, &FIXTURE[..n]);
            assert_eq!(r, Err(PassReason::Truncated), "length {n}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut f = FIXTURE;
        f[23] = 17; // UDP
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::NotTcp));
        let mut f = FIXTURE;
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::NotIp));
        let mut f = FIXTURE;
        f[20] = 0x20; // MF
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::IpFragment));
        let mut f = FIXTURE;
        f[14] = 0x44; // IHL 4
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::Malformed));
        let mut f = FIXTURE;
        f[16] = 0;
        f[17] = 10; // total length < header length
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::Malformed));
        let mut f = FIXTURE;
        f[46] = 0x40; // data offset 4
        assert_eq!(parse(LinkType::Ethernet, &f), Err(PassReason::Malformed));
        let mut f = FIXTURE;
        f[50] ^= 1;
        let s = parse(LinkType::Ethernet, &f).unwrap();
        assert!(verify_tcp_checksum(&s, &[&f]).is_none());
    }

    #[test]
    fn raw_ip_and_cooked_links_find_the_same_segment() {
        let eth = parse(LinkType::Ethernet, &FIXTURE).unwrap();
        let raw = parse(LinkType::RawIp, &FIXTURE[14..]).unwrap();
        assert_eq!((raw.l3_off, raw.seq, raw.payload_len()), (0, eth.seq, 8));
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&FIXTURE[14..]);
        let s = parse(LinkType::LinuxSll, &sll).unwrap();
        assert_eq!((s.l3_off, s.seq), (16, eth.seq));
        sll[14] = 0;
        sll[15] = 4; // 802.2 frame
        assert_eq!(parse(LinkType::LinuxSll, &sll), Err(PassReason::NotIp));
    }

    /// A 78-byte IPv6 frame written out by hand: Ethernet, IPv6 from
    /// 2001:db8::1 to 2001:db8::2, payload length 24, hop limit 64; TCP
    /// 40000 to 80, seq 1, ack 1, ACK, window 500, checksum e906, no
    /// options, payload "klab".
    #[rustfmt::skip]
    const FIXTURE_V6: [u8; 78] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
        0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x06, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
        0x50, 0x10, 0x01, 0xf4, 0xe9, 0x06, 0x00, 0x00,
        b'k', b'l', b'a', b'b',
    ];

    /// A verdict with its payload sum folded (an unfolded sum depends on
    /// how the bytes were split).
    #[derive(Debug, PartialEq, Eq)]
    enum Judged {
        F(u16),
        P(u16),
        Bad,
    }
    use Judged::{Bad, F, P};

    fn judged(seg: &Segment, chunks: &[&[u8]]) -> Judged {
        match check_tcp_checksum(seg, chunks) {
            TcpCsum::Full(d) => F(d.fold()),
            TcpCsum::Partial(d) => P(d.fold()),
            TcpCsum::Bad => Bad,
        }
    }

    /// Sets the TCP checksum field of a frame and parses it again.
    fn with_check(frame: &[u8], check: u16) -> (Vec<u8>, Segment) {
        let mut f = frame.to_vec();
        let s = parse(LinkType::Ethernet, &f).unwrap();
        let o = usize::from(s.tcp_off) + 16;
        f[o..o + 2].copy_from_slice(&check.to_be_bytes());
        let s = parse(LinkType::Ethernet, &f).unwrap();
        (f, s)
    }

    #[test]
    fn an_ipv4_field_holding_the_pseudo_header_sum_is_partial() {
        // __tcp_v4_send_check(): check = ~csum_fold(csum_tcpudp_nofold()),
        // the folded pseudo-header sum itself. For FIXTURE: 10.0.0.1 and
        // 10.0.0.2 give 0x0a00 + 0x0001 + 0x0a00 + 0x0002 = 0x1403, the
        // protocol 0x0006, the TCP length (32 header + 8 payload) 0x0028:
        // 0x1403 + 0x0006 + 0x0028 = 0x1431.
        let s = parse(LinkType::Ethernet, &FIXTURE).unwrap();
        assert_eq!(partial_check_field(&s), 0x1431);
        let data = crate::csum::partial(b"klablro!", Wsum::ZERO);
        // The fixture's own field, 006c, is the full checksum.
        assert_eq!(judged(&s, &[&FIXTURE]), F(data.fold()));
        let (f, s) = with_check(&FIXTURE, 0x1431);
        assert_eq!(judged(&s, &[&f]), P(data.fold()));
        assert_eq!(verify_tcp_checksum(&s, &[&f]), None);
        // Split into page fragments: the same verdict.
        for cut in [1, 50, 66, 70] {
            let (a, b) = f.split_at(cut);
            assert_eq!(judged(&s, &[a, b]), P(data.fold()));
        }
        // One off either way, or the complement (csum_tcpudp_magic's own
        // result, 0xebce), is neither partial nor full.
        for wrong in [0x1430, 0x1432, !0x1431, 0x006d] {
            let (f, s) = with_check(&FIXTURE, wrong);
            assert_eq!(judged(&s, &[&f]), Bad, "{wrong:#x}");
        }
        // A payload byte changed: a full checksum fails, a partial field
        // does not cover the payload and still says partial.
        let (mut f, s) = with_check(&FIXTURE, 0x1431);
        f[73] = b'?';
        let changed = crate::csum::partial(b"klablro?", Wsum::ZERO);
        assert_eq!(judged(&s, &[&f]), P(changed.fold()));
        let mut f = FIXTURE;
        f[73] = b'?';
        let s = parse(LinkType::Ethernet, &f).unwrap();
        assert_eq!(judged(&s, &[&f]), Bad);
    }

    #[test]
    fn an_ipv6_field_holding_the_pseudo_header_sum_is_partial() {
        // __tcp_v6_send_check(): the same form over the IPv6 pseudo header.
        // 2001:db8::1 and 2001:db8::2 give 0x2001 + 0x0db8 + 0x0001 +
        // 0x2001 + 0x0db8 + 0x0002 = 0x5b75, the TCP length (20 + 4) 0x18,
        // next header 0x06: 0x5b93.
        let s = parse(LinkType::Ethernet, &FIXTURE_V6).unwrap();
        s.assert_invariants(FIXTURE_V6.len());
        assert_eq!(s.payload(&FIXTURE_V6), b"klab");
        assert_eq!(partial_check_field(&s), 0x5b93);
        // The full checksum: 0x5b93 + TCP header words (9c40 0050 0000
        // 0001 0000 0001 5010 01f4 0000 0000) + payload (6b6c 6162) folds
        // to 0x16f9; the field is its complement, 0xe906.
        let data = crate::csum::partial(b"klab", Wsum::ZERO);
        assert_eq!(data.fold(), 0xccce);
        assert_eq!(judged(&s, &[&FIXTURE_V6]), F(data.fold()));
        let (f, s) = with_check(&FIXTURE_V6, 0x5b93);
        assert_eq!(judged(&s, &[&f]), P(data.fold()));
        for wrong in [0x5b92, 0x5b94, !0x5b93, 0xe907] {
            let (f, s) = with_check(&FIXTURE_V6, wrong);
            assert_eq!(judged(&s, &[&f]), Bad, "{wrong:#x}");
        }
    }
}
