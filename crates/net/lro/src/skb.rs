//! What goes up the stack: frames as received, or aggregates made of
//! rewritten headers and the payloads of the merged segments.
//!
//! The kernel never copies payload when it aggregates: `lro_add_packet()`
//! chains each merged skb on the parent's `frag_list`, and
//! `lro_add_frags()` appends the packet's page fragments to the parent's
//! `frags[]`. klab does the same with any buffer type `B: AsRef<[u8]>`
//! (a `&[u8]` into a capture held in memory, a `Vec<u8>` from a socket, a
//! page of a receive ring): an [`Aggregate`] holds a small owned header and
//! a list of [`Frag`]s, each a window on a received buffer.
//!
//! ```text
//!  Aggregate { head: link|IP|TCP (rewritten), frags: [ payload of seg 1 ][ seg 2 ] .. [ seg n ] }
//!                                                      frame 1 [data_off..data_end) ...
//! ```
//!
//! Invariant: `len() == head.len() + Σ frag.len`; for an aggregate of
//! `segs > 1` the IP length field in `head` equals `len() - l3_off`.

use crate::csum::{self, Wsum};
use crate::wire::{IPPROTO_TCP, Ip, Segment};

/// A window on a received buffer (`struct skb_frag_struct`: page, offset,
/// size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frag<B> {
    /// The buffer.
    pub buf: B,
    /// Offset of the window in the buffer.
    pub off: u32,
    /// Length of the window.
    pub len: u32,
}

impl<B: AsRef<[u8]>> Frag<B> {
    /// A window covering the whole buffer.
    pub fn whole(buf: B) -> Self {
        let len = buf.as_ref().len() as u32;
        Frag { buf, off: 0, len }
    }

    /// The bytes in the window. A window that does not fit its buffer (a
    /// caller's mistake on the frags path) yields the part that does.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let start = (self.off as usize).min(b.len());
        let end = (start + self.len as usize).min(b.len());
        &b[start..end]
    }
}

/// A packet handed up the stack (the argument of `netif_receive_skb()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skb<B> {
    /// A whole frame as received: passed through, or a descriptor that
    /// held only this packet (inet_lro rewrites no header then).
    Frame(B),
    /// Page fragments as received, on the `lro_receive_frags` path.
    Frags(Vec<Frag<B>>),
    /// Several segments merged under one rewritten header.
    Aggregate(Aggregate<B>),
}

/// Segments merged under one header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate<B> {
    /// Link, IP and TCP headers, rewritten for the merged packet.
    pub head: Vec<u8>,
    /// The payloads, in sequence order.
    pub frags: Vec<Frag<B>>,
    /// Segments merged (`pkt_aggr_cnt`, `NAPI_GRO_CB(skb)->count`).
    pub segs: u32,
    /// The largest merged payload (`gso_size`).
    pub gso_size: u32,
}

impl<B: AsRef<[u8]>> Skb<B> {
    /// Length in bytes of the packet as it would appear on the wire.
    pub fn len(&self) -> usize {
        match self {
            Skb::Frame(b) => b.as_ref().len(),
            Skb::Frags(f) => f.iter().map(|f| f.bytes().len()).sum(),
            Skb::Aggregate(a) => {
                a.head.len() + a.frags.iter().map(|f| f.bytes().len()).sum::<usize>()
            }
        }
    }

    /// True for a zero-length packet (never produced by a manager).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Segments this packet carries (1 unless it is an aggregate).
    pub fn segs(&self) -> u32 {
        match self {
            Skb::Aggregate(a) => a.segs,
            _ => 1,
        }
    }

    /// Appends the packet's bytes to `out`.
    pub fn write_into(&self, out: &mut Vec<u8>) {
        match self {
            Skb::Frame(b) => out.extend_from_slice(b.as_ref()),
            Skb::Frags(f) => f.iter().for_each(|f| out.extend_from_slice(f.bytes())),
            Skb::Aggregate(a) => {
                out.extend_from_slice(&a.head);
                a.frags
                    .iter()
                    .for_each(|f| out.extend_from_slice(f.bytes()));
            }
        }
    }

    /// The packet's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.write_into(&mut v);
        v
    }

    /// Calls `f` on every received buffer this packet is made of, in order
    /// (for callers that carry per-frame metadata in `B`).
    pub fn for_each_buf(&self, mut f: impl FnMut(&B)) {
        match self {
            Skb::Frame(b) => f(b),
            Skb::Frags(v) => v.iter().for_each(|x| f(&x.buf)),
            Skb::Aggregate(a) => a.frags.iter().for_each(|x| f(&x.buf)),
        }
    }
}

/// The TCP fields an aggregate's header gets from its segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpRewrite {
    /// New acknowledgment number.
    pub ack: u32,
    /// New window.
    pub window: u16,
    /// New TSecr, when the segments carry timestamps.
    pub tsecr: Option<u32>,
    /// Flag bits to OR into the header (GRO: FIN and PSH of merged segments).
    pub flags_or: u8,
}

/// The header of a merged packet: the first segment's headers with the IP
/// length and checksum, the TCP fields of `tcp`, and a TCP checksum
/// computed from the payload's partial sum `data_csum`.
///
/// Mirrors `lro_update_tcp_ip_header()` (inet_lro.c): `ack_seq`, `window`,
/// TSecr, `tot_len`, `ip_fast_csum`, then `csum_tcpudp_magic` over the
/// pseudo header, the new TCP header and the accumulated data checksum.
/// GRO (`inet_gro_complete()` / `tcp4_gro_complete()`) rewrites the length
/// and leaves a pseudo-header-only checksum for CHECKSUM_PARTIAL; klab
/// computes the full TCP checksum there too so the packet is valid on the
/// wire (a capture reader checks it).
///
/// Segments whose own fields were partial (`CHECKSUM_PARTIAL`, captured on
/// the sending host) give the same: a full checksum. Their `data_csum` was
/// read from their payload bytes (a partial field holds no payload sum),
/// so the merged checksum is exact, and it is the one the device or
/// `skb_checksum_help()` would have finished the packet with. klab does
/// not write a partial field back: a pcap record has no `ip_summed` to say
/// that a field is meant to be partial, so every reader but klab would
/// take it for a corrupt one. A packet that goes up unmerged keeps its
/// bytes, a partial field included.
pub(crate) fn merged_head(
    first: &[u8],
    seg: &Segment,
    payload_len: u32,
    tcp: TcpRewrite,
    data_csum: Wsum,
) -> Vec<u8> {
    let data_off = usize::from(seg.data_off);
    let mut head = first[..data_off].to_vec();
    let l3 = usize::from(seg.l3_off);
    let t = usize::from(seg.tcp_off);
    let tcp_len = seg.tcp_hdr_len() + payload_len;
    head[t + 8..t + 12].copy_from_slice(&tcp.ack.to_be_bytes());
    head[t + 13] |= tcp.flags_or;
    head[t + 14..t + 16].copy_from_slice(&tcp.window.to_be_bytes());
    if let Some(tsecr) = tcp.tsecr {
        // NOP, NOP, kind 8, len 10, TSval (4), TSecr (4): TSecr at +28.
        head[t + 28..t + 32].copy_from_slice(&tsecr.to_be_bytes());
    }
    head[t + 16] = 0;
    head[t + 17] = 0;
    let pseudo = match &seg.ip {
        Ip::V4(v4) => {
            let tot_len = (t - l3) as u32 + tcp_len;
            debug_assert!(tot_len <= 0xffff);
            head[l3 + 2..l3 + 4].copy_from_slice(&(tot_len as u16).to_be_bytes());
            head[l3 + 10] = 0;
            head[l3 + 11] = 0;
            let ipc = csum::ip_header(&head[l3..t]);
            head[l3 + 10..l3 + 12].copy_from_slice(&ipc.to_be_bytes());
            csum::pseudo_v4(v4.src, v4.dst, IPPROTO_TCP, tcp_len)
        }
        Ip::V6(v6) => {
            head[l3 + 4..l3 + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            csum::pseudo_v6(&v6.src, &v6.dst, IPPROTO_TCP, tcp_len)
        }
    };
    let hdr = csum::partial(&head[t..data_off], Wsum::ZERO);
    let check = pseudo.csum_add(hdr).csum_add(data_csum).checksum();
    head[t + 16..t + 18].copy_from_slice(&check.to_be_bytes());
    head
}

/// Where an accepted segment's payload sum comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataSum {
    /// Summed from the payload bytes while the checksum was judged (it was
    /// verified, or the field was partial).
    Bytes(Wsum),
    /// Derived from the trusted, full checksum field when the segment is
    /// merged ([`data_csum_from_check`]); carries the segment's
    /// pseudo-header sum, already computed to tell a partial field.
    Field(Wsum),
}

impl DataSum {
    /// The payload's partial sum; `frame_head` holds the segment's headers.
    #[inline]
    pub(crate) fn resolve(self, seg: &Segment, frame_head: &[u8]) -> Wsum {
        match self {
            DataSum::Bytes(d) => d,
            DataSum::Field(pseudo) => data_csum_from_check(seg, frame_head, pseudo),
        }
    }
}

/// `lro_tcp_data_csum()`: the partial sum of a segment's payload derived
/// from its checksum field, without reading the payload:
/// `data = -(pseudo + tcp header including the check field)`, `pseudo`
/// being [`crate::wire::pseudo_sum`] of the segment. Exact when the
/// segment's full checksum is valid; meaningless for a partial field,
/// whose segments get their sum from their bytes instead
/// (`lro::Checksum::judge`).
#[inline]
pub(crate) fn data_csum_from_check(seg: &Segment, frame_head: &[u8], pseudo: Wsum) -> Wsum {
    let t = usize::from(seg.tcp_off);
    let hdr = csum::partial(&frame_head[t..usize::from(seg.data_off)], Wsum::ZERO);
    Wsum::ZERO.csum_sub(pseudo).csum_sub(hdr)
}
