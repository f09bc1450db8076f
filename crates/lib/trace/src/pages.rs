//! A request as the page cache sees it: the 4 KiB pages of its byte range.
//!
//! Block traces number their blocks in the device's unit (512-byte sectors
//! for vscsi, csv and oracleGeneral) and text traces in pages; a request
//! for `size` bytes at block `obj_id` covers the byte range
//! `[obj_id * block_size, obj_id * block_size + size)` of its file, and so
//! every page that range touches.

use std::ops::Range;

use crate::{Format, Request};

/// The page size of the page cache.
pub const PAGE_SIZE: u64 = 4096;

impl Format {
    /// Bytes per block number when a request is mapped to pages: 512-byte
    /// sectors for vscsi, csv and oracleGeneral, whole pages for txt and
    /// klab traces.
    pub fn default_block_size(self) -> u64 {
        match self {
            Format::Vscsi | Format::Csv | Format::OracleGeneral => 512,
            Format::Txt | Format::Klab => PAGE_SIZE,
        }
    }
}

/// The page indices a request covers: its byte range
/// `[obj_id * block_size, obj_id * block_size + size)` in 4 KiB pages
/// (offsets that overflow saturate).
pub fn pages_of(r: &Request, block_size: u64) -> Range<u64> {
    let start = r.obj_id.saturating_mul(block_size);
    let end = start.saturating_add(u64::from(r.size));
    start / PAGE_SIZE..end.div_ceil(PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    fn req(obj_id: u64, size: u32) -> Request {
        Request {
            time: 0,
            obj_id,
            size,
            op: Op::Read,
            file: 0,
            next_access: None,
        }
    }

    #[test]
    fn a_request_covers_the_pages_its_byte_range_touches() {
        // 8 sectors at sector 8: bytes 4096..8192, page 1 alone.
        assert_eq!(pages_of(&req(8, 4096), 512), 1..2);
        // One byte past a page boundary reaches the next page.
        assert_eq!(pages_of(&req(7, 513), 512), 0..2);
        // A zero-length request covers nothing.
        assert_eq!(pages_of(&req(3, 0), 4096), 3..3);
        // Page-numbered traces: block k is page k.
        assert_eq!(
            pages_of(&req(5, 8192), Format::Txt.default_block_size()),
            5..7
        );
        assert_eq!(
            pages_of(&req(u64::MAX, 10), 512),
            u64::MAX / 4096..u64::MAX.div_ceil(4096)
        );
        assert_eq!(Format::Vscsi.default_block_size(), 512);
        assert_eq!(Format::Klab.default_block_size(), 4096);
    }
}
