//! Just enough rtnetlink to switch a host route in microseconds: one
//! `RTM_NEWROUTE` with `NLM_F_REPLACE`, the message `ip route replace`
//! sends, without starting a process (which on a loaded machine costs
//! milliseconds, most of a migration's downtime).
//!
//! ```text
//! nlmsghdr { len, type = RTM_NEWROUTE (24), flags = REQUEST|ACK|CREATE|REPLACE, seq, pid }
//! rtmsg    { family AF_INET, dst_len 32, table MAIN, protocol BOOT, scope LINK, type UNICAST }
//! RTA_DST, RTA_OIF, RTA_PREFSRC, RTA_METRICS { RTAX_RTO_MIN (ms) }
//! ```
//!
//! The kernel answers with `NLMSG_ERROR`, error 0 on success
//! (net/ipv4/fib_frontend.c, `inet_rtm_newroute()`).

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink};

const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTAX_RTO_MIN: u16 = 13;

/// A NETLINK_ROUTE socket of the namespace it was opened in.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// The bytes of `ip route replace DST/32 dev OIF src SRC rto_min RTO`.
pub fn route_replace_msg(
    seq: u32,
    dst: Ipv4Addr,
    oif: u32,
    src: Ipv4Addr,
    rto_min_ms: u32,
) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    m.extend_from_slice(&[2, 32, 0, 0, 254, 3, 253, 1]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut m, RTA_DST, &dst.octets());
    attr(&mut m, RTA_OIF, &oif.to_ne_bytes());
    attr(&mut m, RTA_PREFSRC, &src.octets());
    let mut metrics = Vec::new();
    attr(&mut metrics, RTAX_RTO_MIN, &rto_min_ms.to_ne_bytes());
    attr(&mut m, RTA_METRICS, &metrics);
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWROUTE.to_ne_bytes());
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE;
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

impl Rtnl {
    /// Opens a route socket in the calling thread's namespace.
    ///
    /// # Errors
    /// The socket cannot be made.
    pub fn open() -> std::io::Result<Rtnl> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE is protocol 0
        )?;
        Ok(Rtnl { fd, seq: 1 })
    }

    /// The index of interface `name` in the socket's namespace.
    ///
    /// # Errors
    /// No such interface.
    pub fn index(&self, name: &str) -> std::io::Result<u32> {
        Ok(rustix::net::netdevice::name_to_index(
            self.fd.as_fd(),
            name,
        )?)
    }

    /// Replaces the host route to `dst` and waits for the kernel's answer.
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn route_replace(
        &mut self,
        dst: Ipv4Addr,
        oif: u32,
        src: Ipv4Addr,
        rto_min_ms: u32,
    ) -> std::io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let msg = route_replace_msg(self.seq, dst, oif, src, rto_min_ms);
        let kernel = netlink::SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.fd, &msg, SendFlags::empty(), &kernel)?;
        let mut buf = [0u8; 512];
        // Answers to earlier requests (none are left unread) would carry
        // other sequence numbers; a few reads bound the search.
        for _ in 0..8 {
            let (_, n) = rustix::net::recv(&self.fd, &mut buf[..], RecvFlags::empty())?;
            if n < 20 {
                continue;
            }
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            let seq = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
            if ty == NLMSG_ERROR && seq == self.seq {
                let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
                return if err == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::from_raw_os_error(-err))
                };
            }
        }
        Err(std::io::Error::other("no answer from rtnetlink"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_matches_the_uapi_layout() {
        let m = route_replace_msg(
            7,
            Ipv4Addr::new(127, 77, 0, 10),
            3,
            Ipv4Addr::new(127, 77, 1, 1),
            5,
        );
        // 16 header + 12 rtmsg + 8 DST + 8 OIF + 8 PREFSRC + 4 + 8 METRICS.
        assert_eq!(m.len(), 64);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 64);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 0x505);
        assert_eq!(&m[32..36], &[127, 77, 0, 10]);
        assert_eq!(u32::from_ne_bytes(m[40..44].try_into().unwrap()), 3);
        assert_eq!(
            u16::from_ne_bytes(m[54..56].try_into().unwrap()),
            RTA_METRICS
        );
        assert_eq!(
            u16::from_ne_bytes(m[58..60].try_into().unwrap()),
            RTAX_RTO_MIN
        );
        assert_eq!(u32::from_ne_bytes(m[60..64].try_into().unwrap()), 5);
    }
}
