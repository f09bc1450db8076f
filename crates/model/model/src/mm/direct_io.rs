//! The loop device and page-based direct I/O, in the model.
//!
//! Seed 001_9748f8e50c4ab156.txt, "Page-based direct I/O" (LWN, 2009): a
//! file mounted through the loop driver "may well be represented in the
//! page cache twice: once on each side of the loopback mount". Jens
//! Axboe's `dio_args` series let the loop driver read its backing file with
//! direct I/O on pages, which is what Linux 4.4 finally did
//! (drivers/block/loop.c, `lo_rw_aio()` with `IOCB_DIRECT`, Ming Lei).
//!
//! ```text
//!   read of page i of a file inside the image
//!     the file's page cache (upper)  ── hit: done
//!        │ miss: the filesystem reads block b from the loop device
//!        ▼
//!   loop driver ── buffered: read page b of the backing file through its
//!                  page cache (lower): the data is now cached twice
//!               ── direct:   read page b of the backing file straight
//!                  from disk into the upper page: cached once
//! ```
//!
//! A [`LoopDevice`] maps an upper file's pages to pages of its backing file
//! (an image holding several files at page offsets).

use crate::machine::{Access, Machine, Outcome};
use crate::mm::page::FileId;

/// A loop device over a backing file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopDevice {
    /// The image file on the host filesystem.
    pub backing: u32,
    /// `LO_FLAGS_DIRECT_IO`: read the backing file with direct I/O.
    pub direct_io: bool,
    /// Where each file inside the image starts in the image, in pages:
    /// `(file, first page)`.
    pub layout: Vec<(u32, u64)>,
}

/// What a read through the loop device did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopRead {
    /// The upper (file) access.
    pub upper: Outcome,
    /// The backing-file access, when the loop driver went through the page
    /// cache (buffered mode, upper miss).
    pub lower: Option<Outcome>,
    /// A direct read from disk into the upper page (direct mode, upper miss).
    pub direct: bool,
}

impl LoopDevice {
    /// The page of the image that holds page `index` of `file`.
    pub fn image_page(&self, file: u32, index: u64) -> Option<u64> {
        self.layout
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, start)| start + index)
    }
}

impl Machine {
    /// Reads page `index` of `file`, a file inside the image behind `dev`.
    ///
    /// # Panics
    /// If `file` is not in the device's layout (a configuration error).
    pub fn loop_read(&mut self, dev: &LoopDevice, file: u32, index: u64) -> LoopRead {
        let image_page = dev
            .image_page(file, index)
            .unwrap_or_else(|| panic!("file {file} is not on the loop device"));
        let cached = self.is_cached(file, index);
        let mut lower = None;
        if !cached && !dev.direct_io {
            // The loop driver's buffered read fills the backing file's page
            // cache first; the filesystem then copies it into the upper page.
            lower = Some(self.access(Access::read(dev.backing, image_page)));
        }
        let upper = self.access(Access::read(file, index));
        LoopRead {
            upper,
            lower,
            direct: !cached && dev.direct_io,
        }
    }

    /// Resident pages of a file.
    pub fn cached_pages(&self, file: u32) -> u64 {
        self.file(FileId(file)).map_or(0, |a| a.nrpages())
    }
}
