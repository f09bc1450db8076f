//! A TCP segment forged as if from the peer, sent from a raw socket: how a
//! restore puts the peer's FIN back into a receive queue, or acks our FIN
//! (libsoccr's `send_fin()`, which uses libnet; here the 40 bytes are
//! built by hand).
//!
//! ```text
//! IPv4 (20 bytes, IP_HDRINCL: the kernel fills id and checksum)
//!   45 00 len | 0000 4000 | 40 06 csum | peer addr | local addr
//! TCP (20 bytes)
//!   peer port | local port | seq | ack | 50 flags window | csum 0000
//! ```
//!
//! The socket carries `SO_MARK` [`SOCCR_MARK`], and the network lock
//! accepts marked packets, so the segment passes while the connection's
//! other packets are dropped.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;

use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType, ipproto};

use crate::error::SockoptError;

/// The mark of injected segments (CRIU's `SOCCR_MARK`).
pub const SOCCR_MARK: u32 = 0xC114;

/// TCP FIN flag.
pub const FIN: u8 = 0x01;
/// TCP ACK flag.
pub const ACK: u8 = 0x10;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u32::from(b));
        acc += hi | lo;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The 40-byte IPv4 + TCP segment from `from` to `to`.
pub fn segment(
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[6] = 0x40; // don't fragment
    p[8] = 64; // ttl
    p[9] = 6; // tcp
    p[12..16].copy_from_slice(&from.ip().octets());
    p[16..20].copy_from_slice(&to.ip().octets());
    let ip_csum = fold(sum16(&p[..20], 0));
    p[10..12].copy_from_slice(&ip_csum.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&from.port().to_be_bytes());
    t[2..4].copy_from_slice(&to.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&window.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&from.ip().octets());
    pseudo[4..8].copy_from_slice(&to.ip().octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let csum = fold(sum16(t, sum16(&pseudo, 0)));
    t[16..18].copy_from_slice(&csum.to_be_bytes());
    p
}

/// Sends a forged segment from `from` (the peer) to `to` (our socket).
///
/// # Errors
/// The raw socket, its mark, or the send failing.
pub fn send(
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
) -> Result<(), SockoptError> {
    let call = |name: &str, e: rustix::io::Errno| {
        SockoptError::new(name.to_owned(), &std::io::Error::from(e))
    };
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(ipproto::RAW),
    )
    .map_err(|e| call("socket(SOCK_RAW, IPPROTO_RAW)", e))?;
    klab_sys::tcp::set_socket_mark(fd.as_fd(), SOCCR_MARK)
        .map_err(|e| SockoptError::new(format!("setsockopt(SO_MARK, {SOCCR_MARK:#x})"), &e))?;
    let pkt = segment(from, to, seq, ack, flags, window);
    let dst = SocketAddrV4::new(*to.ip(), 0);
    rustix::net::sendto(&fd, &pkt, SendFlags::empty(), &dst)
        .map_err(|e| call("sendto(forged segment)", e))?;
    Ok(())
}

/// The IPv4 form of an address, if it has one.
pub fn v4(a: std::net::SocketAddr) -> Option<SocketAddrV4> {
    match a {
        std::net::SocketAddr::V4(v) => Some(v),
        std::net::SocketAddr::V6(v) => v
            .ip()
            .to_ipv4_mapped()
            .map(|ip: Ipv4Addr| SocketAddrV4::new(ip, v.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_to_zero() {
        let p = segment(
            "127.77.1.1:40000".parse().unwrap(),
            "127.77.0.10:7000".parse().unwrap(),
            1000,
            2000,
            FIN | ACK,
            512,
        );
        // A header with its checksum in place sums to 0xffff (folds to 0).
        assert_eq!(fold(sum16(&p[..20], 0)), 0);
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&p[12..16]);
        pseudo[4..8].copy_from_slice(&p[16..20]);
        pseudo[9] = 6;
        pseudo[11] = 20;
        assert_eq!(fold(sum16(&p[20..], sum16(&pseudo, 0))), 0);
        assert_eq!(p[33], 0x11, "FIN|ACK");
    }
}
