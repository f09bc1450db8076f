//! The cost of tracking every page, measured rather than counted: the
//! model charges each page a `page_cgroup` object from a real SLUB cache,
//! as 2.6.25 and 2.6.26 did (`kmem_cache_alloc(page_cgroup_cache)` in
//! `mem_cgroup_charge_common()`, freed on uncharge), and compares it with
//! 2.6.27's array allocated at boot for every frame, whose patch gave as
//! reasons "we can avoid allocating tons of small objects which can be
//! fragmented" and "we can know what amount of memory will be used".
//!
//! The workload: a process maps half of memory while a stream reads twice
//! memory's worth of a file beside it (so the page_cgroups of anonymous
//! and file pages interleave in the slabs); then the process exits and
//! its pages go, scattering holes through the slabs; then
//! `kmem_cache_shrink()`.

use klab_model::mm::page::TaskId;
use klab_model::mm::slab::{PAGE_CGROUP_SIZE, SlabStats};
use klab_model::{Access, Machine, MachineConfig};

use klab_lab::cells;
use klab_lab::report::{Report, Table};
use klab_model::machine::PAGE_SIZE;

/// The moments measured, in order.
pub(crate) const MOMENTS: [&str; 3] = [
    "memory full",
    "after the process exits",
    "after kmem_cache_shrink()",
];

/// One moment of the run (named by its place in [`MOMENTS`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moment {
    /// Pages charged (each with its page_cgroup).
    pub charged: u64,
    /// Frames of the page_cgroup cache's slabs.
    pub slab_frames: u64,
    /// Frames of the machine.
    pub frames: u64,
}

impl Moment {
    fn of(st: &SlabStats, frames: u64) -> Moment {
        Moment {
            charged: st.page_cgroups,
            // The cache's slabs are order 0 (102 objects to a 4 KiB slab).
            slab_frames: st.page_cgroup_slabs,
            frames,
        }
    }

    /// 2.6.25: the slab frames plus the `page_cgroup` pointer each
    /// `struct page` carried, per charged page.
    pub(crate) fn slab_bytes_per_page(&self) -> f64 {
        (self.slab_frames * PAGE_SIZE + 8 * self.frames) as f64 / self.charged.max(1) as f64
    }

    /// 2.6.27: the boot-time array of every frame's `page_cgroup`, per
    /// charged page.
    pub(crate) fn array_bytes_per_page(&self) -> f64 {
        (u64::from(PAGE_CGROUP_SIZE) * self.frames) as f64 / self.charged.max(1) as f64
    }
}

/// Runs the workload on a machine of `frames` frames; returns the moments.
pub(crate) fn measure(frames: u64) -> Vec<Moment> {
    let mut cfg = MachineConfig::new(frames, klab_mm_policy::LruBalance::Classic);
    cfg.slab = true;
    cfg.page_cgroup = true;
    let mut m = Machine::new(cfg).expect("valid machine");
    let process = 1;
    for i in 0..2 * frames {
        if i % 4 == 0 {
            m.access(Access::anon(process, i / 4).by(process));
        }
        m.access(Access::read(0, i).by(2));
    }
    let ks = |m: &Machine| m.kernel_slab().expect("slab on").stats();
    let mut out = vec![Moment::of(&ks(&m), frames)];
    m.kill_task(TaskId(process));
    out.push(Moment::of(&ks(&m), frames));
    m.slab_shrink();
    out.push(Moment::of(&ks(&m), frames));
    out
}

/// The table of `memcg-limit`.
pub(crate) fn table(r: &mut Report, moments: &[Moment]) {
    let mut t = Table::new(
        "page_cgroup memory, measured in the model: 2.6.25's SLUB objects (plus a pointer in struct page) against 2.6.27's boot-time array",
        &[
            "moment",
            "charged pages",
            "page_cgroup slab frames",
            "2.6.25 bytes per charged page",
            "2.6.27 bytes per charged page",
            "objects per slab frame in use",
        ],
    );
    for (label, mo) in MOMENTS.iter().zip(moments) {
        t.row(cells![
            *label,
            mo.charged,
            mo.slab_frames,
            mo.slab_bytes_per_page(),
            mo.array_bytes_per_page(),
            mo.charged as f64 / mo.slab_frames.max(1) as f64
        ]);
    }
    r.table(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_leaves_fragmented_slabs_and_shrink_only_frees_empty_ones() {
        let m = measure(1024);
        let (full, exited, shrunk) = (m[0], m[1], m[2]);
        // Full: of 1024 frames, 992 hold charged pages; the rest are slab
        // frames and what reclaim's last batch left free.
        assert_eq!((full.charged, full.slab_frames), (992, 10));
        assert_eq!(full.slab_frames, full.charged.div_ceil(102), "packed full");
        // The exit frees the process's 512 page_cgroups, and not one slab:
        // every slab still holds some of the stream's objects.
        assert_eq!((exited.charged, exited.slab_frames), (480, 10));
        // Nothing is empty, so shrinking frees nothing.
        assert_eq!((shrunk.charged, shrunk.slab_frames), (480, 10));
        // Per charged page: 2.6.25 pays (10 * 4096 + 8 * 1024) / 480 bytes,
        // 2.6.27's array 40 * 1024 / 480.
        assert_eq!(
            exited.slab_bytes_per_page(),
            (10.0 * 4096.0 + 8192.0) / 480.0
        );
    }
}
