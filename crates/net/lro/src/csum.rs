//! The Internet checksum (RFC 1071) in the shape the kernel computes it:
//! partial sums that can be added, subtracted and placed at odd offsets.
//!
//! Mirrors the helpers inet_lro.c leans on (include/net/checksum.h:
//! `csum_partial`, `csum_add`, `csum_sub`, `csum_block_add`,
//! `csum_tcpudp_nofold`, `csum_fold`). A [`Wsum`] is a ones-complement sum
//! of 16-bit big-endian words, kept wider than 16 bits and folded only at
//! the end, like the kernel's `__wsum`.
//!
//! Invariant: `fold(a.csum_add(b)) == fold(partial(A ++ B))` when `A` has even
//! length and `a = partial(A)`, `b = partial(B)`; when `A` has odd length
//! the second term must be placed with [`Wsum::block_add`] at an odd
//! offset, which swaps the bytes of `b` (the kernel's `csum_block_add`).

/// A ones-complement partial sum (the kernel's `__wsum`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wsum(u32);

impl Wsum {
    /// The empty sum.
    pub const ZERO: Wsum = Wsum(0);

    /// A sum holding one 16-bit word (a header field).
    #[inline]
    pub fn word(w: u16) -> Wsum {
        Wsum(u32::from(w))
    }

    /// `csum_add`: ones-complement addition with end-around carry.
    #[inline]
    #[must_use]
    pub fn csum_add(self, other: Wsum) -> Wsum {
        let (s, carry) = self.0.overflowing_add(other.0);
        Wsum(s.wrapping_add(u32::from(carry)))
    }

    /// `csum_sub`: adds the ones complement of `other`.
    #[inline]
    #[must_use]
    pub fn csum_sub(self, other: Wsum) -> Wsum {
        self.csum_add(Wsum(!other.0))
    }

    /// `csum_block_add`: adds the sum of a block that starts at byte
    /// `offset` of the covered data; a block at an odd offset has its bytes
    /// swapped relative to the word grid.
    #[inline]
    #[must_use]
    pub fn block_add(self, block: Wsum, offset: usize) -> Wsum {
        if offset & 1 == 1 {
            self.csum_add(Wsum(u32::from(block.fold().swap_bytes())))
        } else {
            self.csum_add(block)
        }
    }

    /// `csum_fold` without the final complement: the 16-bit ones-complement
    /// sum.
    #[inline]
    pub fn fold(self) -> u16 {
        let mut s = (self.0 & 0xffff) + (self.0 >> 16);
        s = (s & 0xffff) + (s >> 16);
        // s <= 0xffff after two rounds.
        s as u16
    }

    /// The checksum field value for data whose sum is `self`: `~fold`.
    #[inline]
    pub fn checksum(self) -> u16 {
        !self.fold()
    }
}

/// `csum_partial`: the sum of `data` as big-endian 16-bit words (a trailing
/// odd byte is the high byte of a last word), added to `init`.
#[inline]
pub fn partial(data: &[u8], init: Wsum) -> Wsum {
    // The ones-complement sum does not care about byte order as long as
    // it is the same for every word (RFC 1071, 2(B)): sum little-endian
    // 32-bit words in 64-bit lanes (which the compiler vectorizes), fold,
    // and swap the two bytes of the result back to network order.
    let mut lanes = [0u64; 4];
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        for (k, w) in c.chunks_exact(4).enumerate() {
            lanes[k] += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    let mut acc: u64 = lanes.iter().map(|l| (l & 0xffff_ffff) + (l >> 32)).sum();
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        acc += u64::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        acc += u64::from(*last);
    }
    // Fold 64 -> 16 bits with end-around carries, then back to big-endian.
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    let le = Wsum(s as u32).fold();
    init.csum_add(Wsum::word(le.swap_bytes()))
}

/// `csum_tcpudp_nofold` for IPv4: the pseudo-header sum (source, dest,
/// protocol, length of the TCP header and data).
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u32) -> Wsum {
    // Five 16-bit words and a length below 2^17 cannot overflow 32 bits.
    let w = |a: [u8; 4]| {
        u32::from(u16::from_be_bytes([a[0], a[1]])) + u32::from(u16::from_be_bytes([a[2], a[3]]))
    };
    Wsum(w(src) + w(dst) + u32::from(proto)).csum_add(Wsum(len))
}

/// The IPv6 pseudo-header sum (`csum_ipv6_magic` before folding).
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> Wsum {
    partial(src, Wsum::ZERO)
        .csum_add(partial(dst, Wsum::ZERO))
        .csum_add(Wsum::word(u16::from(proto)))
        .csum_add(Wsum(len))
}

/// `ip_fast_csum`: the IPv4 header checksum field for `header` (whose own
/// checksum field must be zero, or the result is 0 for a valid header).
#[inline]
pub fn ip_header(header: &[u8]) -> u16 {
    partial(header, Wsum::ZERO).checksum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(partial(&data, Wsum::ZERO).fold(), 0xddf2);
    }

    #[test]
    fn ipv4_header_checksum_of_a_known_header() {
        // A header from the Wikipedia IPv4 checksum example: checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ip_header(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(ip_header(&h), 0);
    }

    #[test]
    fn sums_compose_at_even_and_odd_offsets() {
        let data: Vec<u8> = (0..=200u8).map(|b| b.wrapping_mul(37)).collect();
        let whole = partial(&data, Wsum::ZERO).fold();
        for split in [0, 1, 2, 7, 8, 99, 100, 201] {
            let (a, b) = data.split_at(split);
            let s = partial(a, Wsum::ZERO).block_add(partial(b, Wsum::ZERO), a.len());
            assert_eq!(s.fold(), whole, "split at {split}");
        }
    }

    #[test]
    fn the_vectorized_sum_equals_the_word_by_word_sum() {
        // RFC 1071's definition, one big-endian word at a time.
        fn reference(data: &[u8]) -> u16 {
            let mut s: u32 = 0;
            for w in data.chunks(2) {
                let v = u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]);
                s += u32::from(v);
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        }
        let data: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 2, 3, 15, 16, 17, 31, 64, 1447, 1448, 3000] {
            let a = partial(&data[..len], Wsum::ZERO).fold();
            let b = reference(&data[..len]);
            // 0x0000 and 0xffff are the same number in ones complement.
            assert!(
                a == b || (a == 0xffff && b == 0) || (a == 0 && b == 0xffff),
                "len {len}: {a:#x} {b:#x}"
            );
        }
        let ff = [0xffu8; 4000];
        assert_eq!(partial(&ff, Wsum::ZERO).fold(), 0xffff);
    }

    #[test]
    fn subtraction_undoes_addition() {
        let a = partial(b"hello, world", Wsum::ZERO);
        let b = partial(b"lro", Wsum::ZERO);
        assert_eq!(a.csum_add(b).csum_sub(b).fold(), a.fold());
    }
}
