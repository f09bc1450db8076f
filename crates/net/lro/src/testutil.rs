//! Crafted frames for the rule tests: one builder whose defaults are a
//! plain in-order IPv4 data segment with the aligned timestamp option, and
//! a field per rule to break.

use etherparse::{IpHeaders, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader, TcpOptionElement};

use crate::skb::Skb;
use crate::wire::tcp_flag;

/// A segment to build.
#[derive(Clone, Debug)]
pub(crate) struct Seg {
    pub(crate) sport: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
    pub(crate) window: u16,
    /// (TSval, TSecr) in the aligned NOP NOP TS layout.
    pub(crate) ts: Option<(u32, u32)>,
    /// Raw option bytes instead of `ts` (multiple of 4).
    pub(crate) raw_opts: Option<Vec<u8>>,
    pub(crate) payload: usize,
    pub(crate) tos: u8,
    pub(crate) ttl: u8,
    pub(crate) id: u16,
    pub(crate) df: bool,
    pub(crate) ip_opts: bool,
    /// Bytes of Ethernet padding after the IP packet.
    pub(crate) pad: usize,
    pub(crate) vlan: Option<u16>,
    pub(crate) v6: bool,
    /// Break the TCP checksum.
    pub(crate) bad_csum: bool,
    /// Leave only the pseudo-header sum in the TCP checksum field, as a
    /// Linux sender with checksum offload does (`CHECKSUM_PARTIAL`).
    pub(crate) partial_csum: bool,
}

impl Default for Seg {
    fn default() -> Self {
        Seg {
            sport: 40000,
            seq: 1000,
            ack: 5000,
            flags: tcp_flag::ACK,
            window: 500,
            ts: Some((100, 900)),
            raw_opts: None,
            payload: 100,
            tos: 0,
            ttl: 64,
            id: 1,
            df: true,
            ip_opts: false,
            pad: 0,
            vlan: None,
            v6: false,
            bad_csum: false,
            partial_csum: false,
        }
    }
}

impl Seg {
    /// The next segment of the same flow (seq advanced, IP ID + 1).
    pub(crate) fn next(&self) -> Seg {
        Seg {
            seq: self.seq.wrapping_add(self.payload as u32),
            id: self.id.wrapping_add(1),
            ..self.clone()
        }
    }

    /// The payload byte at offset `i` of the flow's stream.
    pub(crate) fn byte(seq: u32) -> u8 {
        (seq % 251) as u8
    }

    /// The frame.
    pub(crate) fn frame(&self) -> Vec<u8> {
        let mut tcp = TcpHeader::new(self.sport, 80, self.seq, self.window);
        tcp.acknowledgment_number = self.ack;
        tcp.fin = self.flags & tcp_flag::FIN != 0;
        tcp.syn = self.flags & tcp_flag::SYN != 0;
        tcp.rst = self.flags & tcp_flag::RST != 0;
        tcp.psh = self.flags & tcp_flag::PSH != 0;
        tcp.ack = self.flags & tcp_flag::ACK != 0;
        tcp.urg = self.flags & tcp_flag::URG != 0;
        tcp.ece = self.flags & tcp_flag::ECE != 0;
        tcp.cwr = self.flags & tcp_flag::CWR != 0;
        if let Some(raw) = &self.raw_opts {
            tcp.set_options_raw(raw).unwrap();
        } else if let Some((v, e)) = self.ts {
            tcp.set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(v, e),
            ])
            .unwrap();
        }
        let ip = if self.v6 {
            IpHeaders::Ipv6(
                Ipv6Header {
                    traffic_class: self.tos,
                    hop_limit: self.ttl,
                    source: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    destination: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                    ..Default::default()
                },
                Default::default(),
            )
        } else {
            let mut h = Ipv4Header::new(
                0,
                self.ttl,
                etherparse::IpNumber::TCP,
                [10, 0, 0, 1],
                [10, 0, 0, 2],
            )
            .unwrap();
            h.dscp = etherparse::IpDscp::try_new(self.tos >> 2).unwrap();
            h.ecn = etherparse::IpEcn::try_new(self.tos & 3).unwrap();
            h.identification = self.id;
            h.dont_fragment = self.df;
            if self.ip_opts {
                h.options = [1u8, 1, 1, 0][..].try_into().unwrap();
            }
            IpHeaders::Ipv4(h, Default::default())
        };
        let payload: Vec<u8> = (0..self.payload as u32)
            .map(|i| Seg::byte(self.seq.wrapping_add(i)))
            .collect();
        let mut out = Vec::new();
        match self.vlan {
            None => {
                let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .ip(ip)
                    .tcp_header(tcp);
                b.write(&mut out, &payload).unwrap();
            }
            Some(id) => {
                let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .single_vlan(etherparse::VlanId::try_new(id).unwrap())
                    .ip(ip)
                    .tcp_header(tcp);
                b.write(&mut out, &payload).unwrap();
            }
        }
        if self.partial_csum {
            let seg = crate::wire::parse(crate::wire::LinkType::Ethernet, &out).unwrap();
            let o = usize::from(seg.tcp_off) + 16;
            let field = crate::wire::partial_check_field(&seg);
            out[o..o + 2].copy_from_slice(&field.to_be_bytes());
        }
        if self.bad_csum {
            let n = out.len();
            out[n - 1] ^= 0xff;
        }
        out.extend(std::iter::repeat_n(0u8, self.pad));
        out
    }
}

/// A stack that keeps what it is handed, as byte vectors with their
/// segment counts.
#[derive(Default)]
pub(crate) struct Up {
    pub(crate) pkts: Vec<(u32, Vec<u8>)>,
}

impl Up {
    pub(crate) fn take<B: AsRef<[u8]>>(&mut self) -> impl FnMut(Skb<B>) + '_ {
        |s: Skb<B>| self.pkts.push((s.segs(), s.to_vec()))
    }

    pub(crate) fn segs(&self) -> Vec<u32> {
        self.pkts.iter().map(|p| p.0).collect()
    }
}
