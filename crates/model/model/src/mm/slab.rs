//! The model's kernel objects, allocated from SLUB caches over the
//! machine's own frames: mm/slub.c as `klab-slab` runs it, with each slab
//! page charged to a model frame.
//!
//! ```text
//!   Machine
//!     slab: Option<KernelSlab>
//!       slab          klab_slab::ModelSlab   real SLUB (2.6.24) over a frame pool
//!       radix_node    the radix_tree_node cache (lib/radix-tree.c, radix_tree_init())
//!       nodes         file -> (level, index >> 6*level) -> object
//!       frames[n]     model frames charged for node n's slab pages
//!       poisoned      slab frames a memory failure hit -> the pool frame
//!                     (a page of a live slab) whose objects are lost
//! ```
//!
//! * **Radix-tree nodes.** Every node of a file's page-cache tree is an
//!   object of the `radix_tree_node` cache, as `radix_tree_node_alloc()`
//!   makes it (`kmem_cache_alloc(radix_tree_node_cachep)`) and
//!   `radix_tree_node_free()` frees it. After each change at an index the
//!   machine compares the tree's path to that index with the objects it
//!   holds ([`RadixTree::path_nodes`](klab_radix_tree::RadixTree::path_nodes)):
//!   nodes new on the path are allocated, nodes gone are freed.
//! * **page_cgroup.** With [`crate::MachineConfig::page_cgroup`], every
//!   charged page has a `page_cgroup` object, allocated when the page is
//!   charged and freed when it is uncharged, as 2.6.25 and 2.6.26 did
//!   (`mem_cgroup_charge_common()`: `kmem_cache_alloc(page_cgroup_cache)`,
//!   the cache made by `KMEM_CACHE(page_cgroup, SLAB_PANIC)`;
//!   `mem_cgroup_uncharge_page()` frees it). 2.6.27 allocated them all at
//!   boot instead, citing the fragmentation of "tons of small objects";
//!   the `memcg` experiment measures both.
//! * **Charging.** SLUB takes pages from the page allocator
//!   (`allocate_slab()` -> `alloc_pages_node()`); here each slab page of
//!   node `n` is one model frame owned by [`KernelPage::Slab`], taken from
//!   node `n` (or the zonelist fallback), with direct reclaim when none is
//!   free, and freed when SLUB frees the slab (`__free_slab()`). A slab
//!   page's frame competes with the page cache as the kernel's does.
//! * **Memory failures.** A machine frame charged for a slab stands for
//!   one of the node's slab pages, not a particular one: frames are
//!   charged by count. When a memory failure hits one (2.6.32 handles it
//!   as "kernel slab": Delayed), [`Machine::poison_slab_frame`] binds it to
//!   a page of a live slab of its node (the k-th frame charged to the k-th
//!   slab page in address order, skipping pages already bound), and from
//!   then on the objects in that page are poisoned: reading one
//!   (a radix-tree lookup through a node in it, `kmem_cache_alloc()`
//!   taking an object from it, uncharging a `page_cgroup` in it) is the
//!   kernel consuming the error. When SLUB frees the slab, the frame is
//!   freed with it (and retired, being poisoned).
//! * **Hibernation.** The machine serializes the slab as its journal and
//!   replays it on resume ([`klab_slab::ModelSlab`]): same objects, same
//!   slabs, same partial lists.
//!
//! Invariants: for every file, objects held = `tree.nodes()`; for every
//! node `n`, `frames[n].len()` = `slab.node_pages(n)` (or fewer by
//! `slab_charge_fail` frames that reclaim could not find).

use std::collections::{BTreeMap, BTreeSet};

use klab_slab::{CacheId, CacheSpec, Geometry, ModelSlab, ObjId, SlabFlags};

use super::filemap::AddressSpace;
use super::page::{FileId, KernelPage, Owner, Pfn};
use crate::machine::Machine;

/// `struct radix_tree_node` of 3.15 on a 64-bit machine, the layout the
/// model's page cache mirrors (include/linux/radix-tree.h): `path` and
/// `count` (4 bytes each), the `parent`/`private_data` pair sharing a
/// union with `rcu_head` (16), `private_list` (16), 64 slots (8 each) and
/// `RADIX_TREE_MAX_TAGS = 3` tag bitmaps of one word each.
pub const RADIX_TREE_NODE_SIZE: u32 = 4 + 4 + 16 + 16 + 64 * 8 + 3 * 8;

/// `radix_tree_init()`: the cache's creation request (`SLAB_PANIC |
/// SLAB_RECLAIM_ACCOUNT`, with `radix_tree_node_ctor()`, which zeroes the
/// node: a constructor that also keeps the cache from merging).
pub fn radix_tree_node_spec() -> CacheSpec {
    CacheSpec {
        name: "radix_tree_node".into(),
        size: RADIX_TREE_NODE_SIZE,
        align: 0,
        flags: (SlabFlags::PANIC | SlabFlags::RECLAIM_ACCOUNT).0,
        zero_ctor: true,
    }
}

/// `struct page_cgroup` of 2.6.25 on a 64-bit machine (mm/memcontrol.c):
/// `lru` (a list head, 16 bytes), `page` and `mem_cgroup` (8 each),
/// `ref_cnt` and `flags` (4 each).
pub const PAGE_CGROUP_SIZE: u32 = 16 + 8 + 8 + 4 + 4;

/// `KMEM_CACHE(page_cgroup, SLAB_PANIC)`: the struct's size and alignment
/// (its widest member, a pointer), no constructor.
pub fn page_cgroup_spec() -> CacheSpec {
    CacheSpec {
        name: "page_cgroup".into(),
        size: PAGE_CGROUP_SIZE,
        align: 8,
        flags: SlabFlags::PANIC.0,
        zero_ctor: false,
    }
}

/// The owner tag of frame `pfn`'s `page_cgroup`.
fn page_cgroup_tag(pfn: Pfn) -> u64 {
    node_tag(FileId(u32::MAX), (0, u64::from(pfn)))
}

/// A node of a file's tree: `(level, index >> (6 * level))`, leaves at
/// level 1.
pub type NodeKey = (u8, u64);

/// The owner tag a node's object carries: file, level and prefix mixed
/// (splitmix64's finalizer), so freeing the wrong object is caught.
fn node_tag(file: FileId, (level, prefix): NodeKey) -> u64 {
    let mut z = (u64::from(file.0) << 8 | u64::from(level)) ^ prefix.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The kernel's object caches of one machine. See the module header.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct KernelSlab {
    slab: ModelSlab,
    radix_node: CacheId,
    nodes: BTreeMap<FileId, BTreeMap<NodeKey, ObjId>>,
    /// The `page_cgroup` cache, when the machine tracks charges with one.
    page_cgroup: Option<CacheId>,
    /// Each charged frame's `page_cgroup` object.
    pcs: BTreeMap<Pfn, ObjId>,
    frames: Vec<Vec<Pfn>>,
    /// Poisoned slab frames -> the pool frame (a page of a live slab) they
    /// stand for.
    #[serde(default)]
    poisoned: BTreeMap<Pfn, u32>,
    /// Slab pages no frame could be found for, even after reclaim.
    charge_fail: u64,
    /// A charge is under way: reclaim it started may free slab pages but
    /// must not start another reclaim.
    #[serde(skip)]
    charging: bool,
}

impl std::fmt::Debug for KernelSlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSlab")
            .field("slab", &self.slab)
            .field("files", &self.nodes.len())
            .finish()
    }
}

/// Counts of the model's slab.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SlabStats {
    /// Radix-tree node objects allocated.
    pub radix_nodes: u64,
    /// Slabs of the radix-tree node cache.
    pub radix_slabs: u64,
    /// Objects a slab of that cache holds.
    pub radix_objects_per_slab: u64,
    /// Frames the model charged for slab pages.
    pub frames: u64,
    /// Slab pages SLUB holds (equal to `frames` unless a charge failed).
    pub slab_pages: u64,
    /// Slab pages no frame could be found for.
    pub charge_fail: u64,
    /// `page_cgroup` objects allocated.
    pub page_cgroups: u64,
    /// Slabs of the `page_cgroup` cache.
    pub page_cgroup_slabs: u64,
    /// Objects a `page_cgroup` slab holds.
    pub page_cgroup_objects_per_slab: u64,
    /// Requests in the slab's journal.
    pub journal: u64,
}

impl KernelSlab {
    /// The slab of a machine of `pages_per_node` frames, one CPU a node,
    /// with a `page_cgroup` cache if asked.
    ///
    /// # Errors
    /// When the slab cannot be set up (a machine beyond the pool's range).
    pub fn new(pages_per_node: &[u64], page_cgroup: bool) -> Result<KernelSlab, String> {
        let nodes = u16::try_from(pages_per_node.len()).map_err(|e| e.to_string())?;
        let most = pages_per_node.iter().copied().max().unwrap_or(1);
        let mut slab =
            ModelSlab::new(Geometry::for_machine(nodes, most, 1)).map_err(|e| e.to_string())?;
        let radix_node = slab
            .create(radix_tree_node_spec())
            .map_err(|e| e.to_string())?;
        let page_cgroup = if page_cgroup {
            Some(slab.create(page_cgroup_spec()).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(KernelSlab {
            slab,
            radix_node,
            nodes: BTreeMap::new(),
            page_cgroup,
            pcs: BTreeMap::new(),
            frames: vec![Vec::new(); pages_per_node.len()],
            poisoned: BTreeMap::new(),
            charge_fail: 0,
            charging: false,
        })
    }

    /// The allocator.
    pub fn slab(&self) -> &ModelSlab {
        &self.slab
    }

    /// Counts.
    pub fn stats(&self) -> SlabStats {
        let st = self
            .slab
            .kmem_cache(self.radix_node)
            .map(|c| c.stats())
            .unwrap_or_default();
        let pc = self
            .page_cgroup
            .and_then(|c| self.slab.kmem_cache(c))
            .map(|c| c.stats())
            .unwrap_or_default();
        SlabStats {
            radix_nodes: self.slab.live_objects(self.radix_node) as u64,
            radix_slabs: st.slabs as u64,
            radix_objects_per_slab: st.objects_per_slab as u64,
            frames: self.nr_frames(),
            slab_pages: self.slab.pages() as u64,
            charge_fail: self.charge_fail,
            journal: self.slab.journal_len() as u64,
            page_cgroups: self.pcs.len() as u64,
            page_cgroup_slabs: pc.slabs as u64,
            page_cgroup_objects_per_slab: pc.objects_per_slab as u64,
        }
    }

    /// Frames charged for slab pages.
    pub fn nr_frames(&self) -> u64 {
        self.frames.iter().map(|f| f.len() as u64).sum()
    }

    /// Node objects held for `file`.
    pub fn file_nodes(&self, file: FileId) -> usize {
        self.nodes.get(&file).map_or(0, BTreeMap::len)
    }

    #[cfg(test)]
    pub(crate) fn nodes_mut(&mut self) -> &mut BTreeMap<FileId, BTreeMap<NodeKey, ObjId>> {
        &mut self.nodes
    }

    #[cfg(test)]
    pub(crate) fn frames_mut(&mut self) -> &mut Vec<Vec<Pfn>> {
        &mut self.frames
    }

    /// Every frame charged to the slab.
    pub fn frames(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.frames.iter().flatten().copied()
    }

    /// Poisoned slab frames and the pool frames they stand for.
    pub fn poisoned(&self) -> &BTreeMap<Pfn, u32> {
        &self.poisoned
    }

    /// The poisoned machine frame an object lies in, if it does.
    pub(crate) fn object_poisoned(&self, obj: ObjId) -> Option<Pfn> {
        if self.poisoned.is_empty() {
            return None;
        }
        let pool = obj.pfn();
        self.poisoned
            .iter()
            .find_map(|(&f, &p)| (p == pool).then_some(f))
    }

    /// The radix-tree node objects a lookup of `index` in `file` reads,
    /// root first (the nodes held on the path to `index`).
    pub(crate) fn path_objects(&self, file: FileId, index: u64) -> Vec<ObjId> {
        let Some(held) = self.nodes.get(&file) else {
            return Vec::new();
        };
        let top = held.keys().next_back().map_or(0, |&(l, _)| l);
        (1..=top)
            .rev()
            .filter_map(|level| {
                let key = (
                    level,
                    index >> (klab_radix_tree::MAP_SHIFT * u32::from(level)),
                );
                held.get(&key).copied()
            })
            .collect()
    }
}

impl Machine {
    /// The kernel's object caches, when the machine runs them
    /// ([`crate::MachineConfig::slab`]).
    pub fn kernel_slab(&self) -> Option<&KernelSlab> {
        self.slab.as_ref()
    }

    /// After a change at `index` of `file`'s tree: allocates an object for
    /// each new node and frees the object of each node gone, on the CPU of
    /// `cpu_node`; then charges frames.
    ///
    /// While the height stays, an insert or a delete at `index` makes or
    /// frees nodes only on the path to `index`, so only that path is
    /// compared. When the height changed (`radix_tree_extend()` adds a
    /// chain of nodes above the old root, `radix_tree_shrink()` drops
    /// roots that had one child), every node is.
    pub(crate) fn sync_tree_nodes(&mut self, file: FileId, index: u64, cpu_node: usize) {
        let Some(ks) = self.slab.as_mut() else {
            return;
        };
        let a = self.files.get(&file);
        let height = a.map_or(0, AddressSpace::height);
        let cpu = cpu_node.min(ks.frames.len() - 1) as u16;
        let held = ks.nodes.entry(file).or_default();
        // The highest node held is the old root: its level, the old height.
        let old_height = held.keys().next_back().map_or(0, |&(l, _)| u32::from(l));
        let mut gone: Vec<NodeKey> = Vec::new();
        let mut new: Vec<NodeKey> = Vec::new();
        if old_height == height {
            let depth = a.map_or(0, |a| a.path_nodes(index));
            // Levels height-depth+1 ..= height hold a node on the path now.
            for level in 1..=height {
                let key = (level as u8, index >> (klab_radix_tree::MAP_SHIFT * level));
                let present = level + depth > height;
                match (held.contains_key(&key), present) {
                    (true, false) => gone.push(key),
                    (false, true) => new.push(key),
                    _ => {}
                }
            }
        } else {
            let now: BTreeSet<NodeKey> = a
                .map(AddressSpace::node_keys)
                .unwrap_or_default()
                .into_iter()
                .map(|(l, p)| (l as u8, p))
                .collect();
            gone.extend(held.keys().filter(|k| !now.contains(k)));
            new.extend(now.iter().filter(|k| !held.contains_key(k)));
        }
        for key in gone {
            let obj = held.remove(&key).expect("held");
            ks.slab
                .free(ks.radix_node, cpu, obj, node_tag(file, key))
                .expect("a node's object is live and tagged");
        }
        let mut fresh = Vec::new();
        for key in new {
            match ks.slab.alloc(ks.radix_node, cpu, node_tag(file, key)) {
                Ok(obj) => {
                    held.insert(key, obj);
                    fresh.push(obj);
                }
                Err(e) => panic!("radix_tree_node: {e} (the pool covers every frame)"),
            }
        }
        if held.is_empty() {
            ks.nodes.remove(&file);
        }
        // kmem_cache_alloc() read each new object's free pointer.
        if let Some(f) = fresh.iter().find_map(|&o| ks.object_poisoned(o)) {
            self.kernel_consumed(f, "radix_tree_node slab page (kmem_cache_alloc)");
        }
        self.charge_slab();
    }

    /// `kmem_cache_shrink()` on every cache of the machine (what writing
    /// to `/sys/kernel/slab/*/shrink` does): frees empty slabs kept on the
    /// partial lists, then their frames. Returns the slabs freed.
    pub fn slab_shrink(&mut self) -> usize {
        let Some(ks) = self.slab.as_mut() else {
            return 0;
        };
        let caches: Vec<CacheId> = std::iter::once(ks.radix_node)
            .chain(ks.page_cgroup)
            .collect();
        let mut freed = 0;
        for c in caches {
            freed += ks.slab.shrink(c).expect("the machine's caches exist");
        }
        self.charge_slab();
        freed
    }

    /// `kmem_cache_alloc(page_cgroup_cache)` for a page just charged, on a
    /// CPU of its node (`mem_cgroup_charge_common()`).
    pub(crate) fn page_cgroup_alloc(&mut self, pfn: Pfn) {
        let node = usize::from(self.mem.page(pfn).node);
        let Some(ks) = self.slab.as_mut() else {
            return;
        };
        let Some(cache) = ks.page_cgroup else {
            return;
        };
        let cpu = node.min(ks.frames.len() - 1) as u16;
        let consumed = match ks.slab.alloc(cache, cpu, page_cgroup_tag(pfn)) {
            Ok(obj) => {
                let old = ks.pcs.insert(pfn, obj);
                assert!(old.is_none(), "frame {pfn} charged twice");
                ks.object_poisoned(obj)
            }
            Err(e) => panic!("page_cgroup: {e} (the pool covers every frame)"),
        };
        if let Some(f) = consumed {
            self.kernel_consumed(f, "page_cgroup slab page (kmem_cache_alloc)");
        }
        self.charge_slab();
    }

    /// `kmem_cache_free(page_cgroup_cache)` for a page being uncharged.
    pub(crate) fn page_cgroup_free(&mut self, pfn: Pfn) {
        let node = usize::from(self.mem.page(pfn).node);
        let Some(ks) = self.slab.as_mut() else {
            return;
        };
        let Some(cache) = ks.page_cgroup else {
            return;
        };
        let obj = ks
            .pcs
            .remove(&pfn)
            .expect("a charged page has its page_cgroup");
        // mem_cgroup_uncharge_page() reads the page_cgroup before freeing it.
        let consumed = ks.object_poisoned(obj);
        let cpu = node.min(ks.frames.len() - 1) as u16;
        ks.slab
            .free(cache, cpu, obj, page_cgroup_tag(pfn))
            .expect("a page_cgroup is live and tagged");
        if let Some(f) = consumed {
            self.kernel_consumed(f, "page_cgroup slab page (uncharge)");
        }
        self.charge_slab();
    }

    /// Brings the frames charged for each node's slab pages level with
    /// what SLUB holds: frees frames of freed slabs, takes frames (with
    /// direct reclaim) for new ones.
    pub(crate) fn charge_slab(&mut self) {
        let Some(ks) = self.slab.as_mut() else {
            return;
        };
        let nested = std::mem::replace(&mut ks.charging, true);
        self.release_poisoned_slabs();
        let nodes = self.slab.as_ref().expect("checked above").frames.len();
        for n in 0..nodes {
            loop {
                let ks = self.slab.as_mut().expect("checked above");
                let want = ks.slab.node_pages(n);
                let have = ks.frames[n].len();
                if have > want {
                    // Some slab page was freed: give back a frame not bound
                    // to a live poisoned slab page (those go with theirs).
                    let Some(at) = ks.frames[n]
                        .iter()
                        .rposition(|f| !ks.poisoned.contains_key(f))
                    else {
                        break;
                    };
                    let pfn = ks.frames[n].remove(at);
                    self.mem.free(pfn);
                } else if have < want && !nested {
                    let pfn = match self.mem.alloc(n) {
                        Some(p) => p,
                        None => {
                            // Reclaim may free slab objects (shadow nodes)
                            // and so change `want`: look again after it.
                            self.try_to_free_pages(n);
                            match self.mem.alloc(n) {
                                Some(p) => p,
                                None => {
                                    let ks = self.slab.as_mut().expect("checked above");
                                    ks.charge_fail += 1;
                                    self.stat.alloc_fail += 1;
                                    break;
                                }
                            }
                        }
                    };
                    let p = self.mem.page_mut(pfn);
                    p.owner = Owner::Kernel(KernelPage::Slab);
                    p.flags = 0;
                    let ks = self.slab.as_mut().expect("checked above");
                    ks.frames[n].push(pfn);
                } else {
                    break;
                }
            }
        }
        self.slab.as_mut().expect("checked above").charging = nested;
    }

    /// Frees the poisoned frames whose slab SLUB has freed: the frame
    /// goes with its slab (and the page allocator retires it).
    fn release_poisoned_slabs(&mut self) {
        let Some(ks) = self.slab.as_mut() else {
            return;
        };
        let gone: Vec<Pfn> = ks
            .poisoned
            .iter()
            .filter(|&(_, &p)| ks.slab.slab_at(p).is_none())
            .map(|(&f, _)| f)
            .collect();
        for f in gone {
            ks.poisoned.remove(&f);
            for frames in &mut ks.frames {
                frames.retain(|&x| x != f);
            }
            self.mem.free(f);
        }
    }

    /// A memory failure hit slab frame `pfn` (charged to node `n`'s slab
    /// pages): binds it to a page of a live slab of that node (see the
    /// module header). Returns the pool frame, or `None` when the frame is
    /// not one the slab charged (a frame reserved as a slab page without
    /// objects, as the scenario runner's are) or every slab page of the
    /// node is bound already.
    pub(crate) fn poison_slab_frame(&mut self, pfn: Pfn) -> Option<u32> {
        let ks = self.slab.as_mut()?;
        let (n, k) = ks
            .frames
            .iter()
            .enumerate()
            .find_map(|(n, f)| f.iter().position(|&x| x == pfn).map(|k| (n, k)))?;
        let bound: BTreeSet<u32> = ks.poisoned.values().copied().collect();
        let pages: Vec<u32> = ks
            .slab
            .node_slab_frames(n)
            .into_iter()
            .flat_map(|(first, len)| first..first + len)
            .filter(|p| !bound.contains(p))
            .collect();
        if pages.is_empty() {
            return None;
        }
        let p = pages[k % pages.len()];
        ks.poisoned.insert(pfn, p);
        Some(p)
    }

    /// The slab's invariants (see the module header).
    pub(crate) fn check_slab(&self) -> Result<(), String> {
        if self.cfg.slab != self.slab.is_some() {
            return Err(format!(
                "the configuration says slab {}, the machine has {}",
                self.cfg.slab,
                if self.slab.is_some() { "one" } else { "none" }
            ));
        }
        let Some(ks) = &self.slab else {
            return Ok(());
        };
        let nodes = self.cfg.pages_per_node.len();
        if ks.frames.len() != nodes || usize::from(ks.slab.geometry().nodes) != nodes {
            return Err(format!(
                "slab for {} nodes on a machine of {nodes}",
                ks.frames.len()
            ));
        }
        let most = self.cfg.pages_per_node.iter().copied().max().unwrap_or(1);
        let geometry = Geometry::for_machine(nodes as u16, most, 1);
        if ks.slab.geometry() != geometry {
            return Err(format!(
                "slab geometry {:?}, the machine's is {geometry:?}",
                ks.slab.geometry()
            ));
        }
        let pages = self.mem.pages();
        let mut seen = BTreeSet::new();
        for (n, frames) in ks.frames.iter().enumerate() {
            for &pfn in frames {
                if !seen.insert(pfn) {
                    return Err(format!("slab frame {pfn} charged twice"));
                }
                let ok = pages
                    .get(pfn as usize)
                    .is_some_and(|p| p.owner == Owner::Kernel(KernelPage::Slab));
                if !ok {
                    return Err(format!("slab frame {pfn} of node {n} is not a slab page"));
                }
            }
            let want = ks.slab.node_pages(n);
            if frames.len() > want || (frames.len() < want && ks.charge_fail == 0) {
                return Err(format!(
                    "node {n}: {} frames charged for {want} slab pages",
                    frames.len()
                ));
            }
        }
        for (&f, &p) in &ks.poisoned {
            if !seen.contains(&f) || !pages[f as usize].test(crate::mm::page::flags::HWPOISON) {
                return Err(format!(
                    "poisoned slab frame {f} is not a charged, poisoned slab frame"
                ));
            }
            if ks.slab.slab_at(p).is_none() {
                return Err(format!(
                    "poisoned slab frame {f} stands for pool frame {p}, which no slab holds"
                ));
            }
        }
        for (file, a) in &self.files {
            let held: Vec<(u32, u64)> = ks
                .nodes
                .get(file)
                .map(|h| h.keys().map(|&(l, p)| (u32::from(l), p)).collect())
                .unwrap_or_default();
            let mut now = a.node_keys();
            now.sort_unstable();
            if held != now {
                return Err(format!(
                    "file {}: node objects for {} nodes, the tree has {}",
                    file.0,
                    held.len(),
                    now.len()
                ));
            }
        }
        let mut total = 0;
        for (file, held) in &ks.nodes {
            if !self.files.contains_key(file) {
                return Err(format!("node objects of file {} that has no cache", file.0));
            }
            for (&key, &obj) in held {
                total += 1;
                if ks.slab.owner(obj) != Some(ks.radix_node)
                    || ks.slab.tag(obj) != Some(node_tag(*file, key))
                {
                    return Err(format!(
                        "file {} node {key:?}: {obj} is not its radix_tree_node object",
                        file.0
                    ));
                }
            }
        }
        if total != ks.slab.live_objects(ks.radix_node) {
            return Err(format!(
                "{total} tree nodes, {} radix_tree_node objects",
                ks.slab.live_objects(ks.radix_node)
            ));
        }
        if ks.page_cgroup.is_some() != self.cfg.page_cgroup
            || (ks.page_cgroup.is_none() && !ks.pcs.is_empty())
        {
            return Err("page_cgroup objects disagree with the configuration".into());
        }
        if let Some(cache) = ks.page_cgroup {
            let mut charged = 0;
            for (pfn, p) in pages.iter().enumerate() {
                if matches!(p.owner, Owner::File { .. } | Owner::Anon { .. }) {
                    charged += 1;
                    let pfn = pfn as Pfn;
                    let ok = ks.pcs.get(&pfn).is_some_and(|&obj| {
                        ks.slab.owner(obj) == Some(cache)
                            && ks.slab.tag(obj) == Some(page_cgroup_tag(pfn))
                    });
                    if !ok {
                        return Err(format!("charged frame {pfn} has no page_cgroup"));
                    }
                }
            }
            if charged != ks.pcs.len() || charged != ks.slab.live_objects(cache) {
                return Err(format!(
                    "{charged} charged frames, {} page_cgroups, {} objects",
                    ks.pcs.len(),
                    ks.slab.live_objects(cache)
                ));
            }
        }
        Ok(())
    }
}
