//! What a hibernation image is written to and made of: the swap device
//! with its bandwidth, and the contents of the model's pages.
//!
//! The model's frames carry no data. To compress an image for real, each
//! saved page is given the contents of a page of a [`Corpus`] of real
//! bytes (chosen by the page's owner through a fixed hash, so the same
//! file page always has the same contents), and [`Corpus`] compresses each
//! of its pages once with LZ4 (`lz4_flex`) when it is built, checking that
//! the block decompresses to the page. A page is stored compressed only
//! when that is smaller than the page (TuxOnIce's
//! `toi_compress_write_page()`: `if (!ret && ctx->len < buf_size)`), else
//! as it is.

use serde::{Deserialize, Serialize};

use crate::machine::PAGE_SIZE;
use crate::mm::page::Owner;

/// A swap device: sequential write and read bandwidth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapDevice {
    /// Bytes per second written.
    pub write_bytes_per_s: u64,
    /// Bytes per second read.
    pub read_bytes_per_s: u64,
}

impl SwapDevice {
    /// Time to write `bytes`, rounded up to the nanosecond:
    /// `bytes * 10^9 / write_bytes_per_s`.
    pub fn write_ns(&self, bytes: u64) -> u64 {
        transfer_ns(bytes, self.write_bytes_per_s)
    }

    /// Time to read `bytes`, rounded up.
    pub fn read_ns(&self, bytes: u64) -> u64 {
        transfer_ns(bytes, self.read_bytes_per_s)
    }
}

fn transfer_ns(bytes: u64, per_s: u64) -> u64 {
    let per_s = u128::from(per_s.max(1));
    (u128::from(bytes) * 1_000_000_000).div_ceil(per_s) as u64
}

/// Real bytes cut into pages, each compressed once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corpus {
    /// Where the bytes came from.
    pub name: String,
    /// The pages.
    pages: Vec<Vec<u8>>,
    /// Bytes each page takes in a compressed image (at most `PAGE_SIZE`).
    stored: Vec<u64>,
}

/// A corpus that could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorpusError {
    /// Fewer bytes than one page.
    #[error("corpus {name}: {bytes} bytes, less than one {PAGE_SIZE}-byte page")]
    TooSmall {
        /// The corpus.
        name: String,
        /// Its length.
        bytes: usize,
    },
    /// An LZ4 block did not decompress to its page.
    #[error("corpus {name}: page {page} does not survive LZ4 compression")]
    RoundTrip {
        /// The corpus.
        name: String,
        /// The page.
        page: usize,
    },
}

impl Corpus {
    /// Cuts `bytes` into whole pages (a partial last page is left out) and
    /// compresses each.
    ///
    /// # Errors
    /// Fewer bytes than a page, or a page that does not round-trip.
    pub fn new(name: &str, bytes: &[u8]) -> Result<Corpus, CorpusError> {
        let page = PAGE_SIZE as usize;
        let pages: Vec<Vec<u8>> = bytes.chunks_exact(page).map(<[u8]>::to_vec).collect();
        if pages.is_empty() {
            return Err(CorpusError::TooSmall {
                name: name.into(),
                bytes: bytes.len(),
            });
        }
        let mut stored = Vec::with_capacity(pages.len());
        for (i, p) in pages.iter().enumerate() {
            let c = lz4_flex::block::compress(p);
            match lz4_flex::block::decompress(&c, page) {
                Ok(back) if back == *p => {}
                _ => {
                    return Err(CorpusError::RoundTrip {
                        name: name.into(),
                        page: i,
                    });
                }
            }
            stored.push((c.len() as u64).min(PAGE_SIZE));
        }
        Ok(Corpus {
            name: name.into(),
            pages,
            stored,
        })
    }

    /// Pages in the corpus.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Never: a corpus has at least one page.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Which corpus page holds the contents of the page `owner` owns.
    pub fn page_of(&self, owner: &Owner) -> usize {
        let key = match *owner {
            Owner::File { file, index } => (1u64 << 62) ^ (u64::from(file.0) << 40) ^ index,
            Owner::Anon { task, vpage } => (2u64 << 62) ^ (u64::from(task.0) << 40) ^ vpage,
            Owner::Huge { task } => (3u64 << 62) ^ u64::from(task.0),
            Owner::Kernel(k) => k as u64,
            Owner::Free => 0,
        };
        (splitmix64(key) % self.pages.len() as u64) as usize
    }

    /// The contents of the page `owner` owns.
    pub fn contents(&self, owner: &Owner) -> &[u8] {
        &self.pages[self.page_of(owner)]
    }

    /// Bytes the page `owner` owns takes in a compressed image.
    pub fn stored_bytes(&self, owner: &Owner) -> u64 {
        self.stored[self.page_of(owner)]
    }

    /// Bytes in, bytes out over the whole corpus.
    pub fn ratio(&self) -> (u64, u64) {
        (
            self.pages.len() as u64 * PAGE_SIZE,
            self.stored.iter().sum(),
        )
    }
}

/// SplitMix64's finalizer: a fixed, portable mix of the key.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::page::FileId;
    use rand::RngCore;

    const ZERO_PAGE_LZ4: u64 = 27;

    #[test]
    fn write_time_is_bytes_over_bandwidth() {
        let d = SwapDevice {
            write_bytes_per_s: 40_000_000,
            read_bytes_per_s: 50_000_000,
        };
        // 100 MB at 40 MB/s: 2.5 s; at 50 MB/s: 2 s.
        assert_eq!(d.write_ns(100_000_000), 2_500_000_000);
        assert_eq!(d.read_ns(100_000_000), 2_000_000_000);
        // One byte rounds up to 25 ns.
        assert_eq!(d.write_ns(1), 25);
    }

    #[test]
    fn zero_pages_compress_and_random_pages_are_stored_as_they_are() {
        let mut bytes = vec![0u8; 4096];
        let mut noise = vec![0u8; 4096];
        crate::rng::seeded(1, 1).fill_bytes(&mut noise);
        bytes.extend_from_slice(&noise);
        bytes.extend_from_slice(&[7u8; 100]); // a partial page: left out
        let c = Corpus::new("zeros+noise", &bytes).unwrap();
        assert_eq!(c.len(), 2);
        // LZ4 of 4096 zero bytes: a literal, one long match (its length in
        // extension bytes of 255), the literals LZ4 leaves at the end of a
        // block: 27 bytes as lz4_flex writes the block.
        assert_eq!(c.stored[0], ZERO_PAGE_LZ4);
        // Random bytes do not compress: stored whole.
        assert_eq!(c.stored[1], 4096);
        assert_eq!(c.ratio(), (8192, 4096 + c.stored[0]));
        let f = Owner::File {
            file: FileId(3),
            index: 9,
        };
        assert_eq!(c.page_of(&f), c.page_of(&f), "a page keeps its contents");
        assert!(Corpus::new("short", &[0; 4095]).is_err());
    }
}
