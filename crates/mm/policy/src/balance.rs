//! The kernel's rules for balancing the active and inactive LRU lists, as
//! values: the model's reclaim code asks these functions, and never decides
//! balance itself.
//!
//! Three rules for the file lists, one per era:
//!
//! | rule | source | inactive list is "low" when | on a refault of distance R |
//! | --- | --- | --- | --- |
//! | [`LruBalance::Classic`] | 2.6.28 split LRU, mm/vmscan.c `inactive_file_is_low()` | `active > inactive` | nothing (no shadow entries) |
//! | [`LruBalance::RefaultDistance`] | LWN, "Better active/inactive list balancing" (May 2012), Johannes Weiner's proposal | never: refaults balance the lists | `R < active`: deactivate one active page; the refaulted page stays inactive |
//! | [`LruBalance::Workingset315`] | 3.15, mm/workingset.c `workingset_refault()` (a528910e12ec) | `active > inactive` (kept) | `R <= active`: activate the refaulted page |
//! | [`LruBalance::Workingset6`] | 5.9 to 6.x without MGLRU: mm/workingset.c `workingset_test_recent()`, mm/vmscan.c `prepare_scan_control()`, `get_scan_count()` | `inactive * sqrt(10 * GB) < active`, or new refault activations since the last reclaim | `R + 1 <= workingset` (the active file list, plus the anonymous lists with swap): activate |
//!
//! The page's proposal replaces the 1:1 rule ("the active list is not
//! allowed to grow larger than the inactive list") with refault-driven
//! deactivation; how the 2012 patch behaved when the inactive list runs
//! empty is not on the page, so the model, like any reclaim, deactivates
//! from the active list when there is nothing inactive left to reclaim.
//! The merged 3.15 code kept the 1:1 rule and used the distance to decide
//! whether the *refaulting* page joins the active list.
//!
//! 6.x changed three things around the 3.15 rule, all mirrored by
//! [`LruBalance::Workingset6`]: a shadow records the non-resident age
//! *before* the eviction is counted (so distances are one larger than
//! 3.15's); reclaim deactivates active file pages whenever refault
//! activations happened since the previous reclaim ("a new workingset is
//! being established", [`LruBalance::deactivates_on_refaults`]), and
//! otherwise by the square-root ratio; and reclaim scans each list by
//! `size >> priority`, from `DEF_PRIORITY` down, until enough is freed
//! ([`LruBalance::scans_by_priority`]), instead of fixed batches.
//!
//! The anonymous lists keep one rule in every era modelled:
//! [`inactive_anon_is_low`].

use std::fmt;
use std::str::FromStr;

/// How the file LRU lists are balanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LruBalance {
    /// The active list may not grow larger than the inactive list.
    Classic,
    /// The LWN page's proposal: a refault with distance below the active
    /// list's length deactivates one active page.
    RefaultDistance,
    /// As merged in 3.15: a refault with distance at most the active list's
    /// length activates the refaulting page; the 1:1 rule stays.
    Workingset315,
    /// As in 5.9 to 6.x without MGLRU: 3.15's activation test on a distance
    /// one larger, reclaim that deactivates after refault activations, and
    /// scans sized by priority.
    Workingset6,
}

/// What a refault does under a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefaultAction {
    /// The refaulting page goes straight to the active list.
    pub activate: bool,
    /// One page moves from the active list's tail to the inactive list.
    pub deactivate_one: bool,
}

impl LruBalance {
    /// Every rule, in the order experiments show them.
    pub const ALL: [LruBalance; 4] = [
        LruBalance::Classic,
        LruBalance::RefaultDistance,
        LruBalance::Workingset315,
        LruBalance::Workingset6,
    ];

    /// The three rules of the seed page's era: the 1:1 rule, the page's
    /// proposal, and what 3.15 merged.
    pub const SEED: [LruBalance; 3] = [
        LruBalance::Classic,
        LruBalance::RefaultDistance,
        LruBalance::Workingset315,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            LruBalance::Classic => "classic",
            LruBalance::RefaultDistance => "refault-distance",
            LruBalance::Workingset315 => "workingset-3.15",
            LruBalance::Workingset6 => "workingset-6",
        }
    }

    /// Whether the rule records shadow entries and measures refault
    /// distances at all. (The model counts refaults under every rule, for
    /// comparison; under `Classic` they change nothing.)
    pub fn uses_shadows(self) -> bool {
        !matches!(self, LruBalance::Classic)
    }

    /// Whether reclaim must deactivate active file pages before reclaiming
    /// inactive ones.
    ///
    /// Mirrors mm/vmscan.c `inactive_file_is_low()` (2.6.28-3.x):
    /// `active > inactive`. Under [`LruBalance::RefaultDistance`] the
    /// lists are balanced by refaults instead, so it is never low.
    ///
    /// `Workingset6` mirrors 6.x `inactive_is_low()`: `inactive *
    /// inactive_ratio < active`, the ratio `int_sqrt(10 * GB)` of the two
    /// lists together (1 below a gigabyte), with 4 KiB pages.
    pub fn inactive_file_is_low(self, active: u64, inactive: u64) -> bool {
        match self {
            LruBalance::Classic | LruBalance::Workingset315 => active > inactive,
            LruBalance::RefaultDistance => false,
            LruBalance::Workingset6 => {
                inactive.saturating_mul(inactive_ratio(active.saturating_add(inactive), 4096))
                    < active
            }
        }
    }

    /// Whether reclaim deactivates active file pages whenever refault
    /// activations happened since the previous reclaim, whatever the list
    /// sizes (6.x `prepare_scan_control()`: "When refaults are being
    /// observed, it means a new workingset is being established. Deactivate
    /// to get rid of any stale active pages quickly.").
    pub fn deactivates_on_refaults(self) -> bool {
        matches!(self, LruBalance::Workingset6)
    }

    /// Whether reclaim scans each list by `size >> priority`, from
    /// `DEF_PRIORITY` (12) down until `SWAP_CLUSTER_MAX` pages are freed
    /// (6.x `do_try_to_free_pages()` and `get_scan_count()`), rather than in
    /// fixed batches.
    pub fn scans_by_priority(self) -> bool {
        matches!(self, LruBalance::Workingset6)
    }

    /// What a file-page refault with `distance` does when the active file
    /// list holds `nr_active` pages.
    ///
    /// * `Workingset315` mirrors mm/workingset.c `workingset_refault()`
    ///   (3.15): activate iff `refault_distance <= NR_ACTIVE_FILE`.
    /// * `RefaultDistance` is the page's rule: "if R is less than the length
    ///   of the active list, one page will be moved from the active to the
    ///   inactive list".
    /// * `Workingset6` mirrors 6.x `workingset_test_recent()`: activate iff
    ///   `refault_distance <= workingset_size`, where 6.x's distance is
    ///   `distance + 1` (its shadow holds the age before the eviction is
    ///   counted; 3.15's, and `distance` here, the age after). The caller
    ///   passes the workingset size as `nr_active`: the active file list,
    ///   plus both anonymous lists when swap is free.
    pub fn on_refault(self, distance: u64, nr_active: u64) -> RefaultAction {
        match self {
            LruBalance::Classic => RefaultAction::default(),
            LruBalance::RefaultDistance => RefaultAction {
                activate: false,
                deactivate_one: distance < nr_active,
            },
            LruBalance::Workingset315 => RefaultAction {
                activate: distance <= nr_active,
                deactivate_one: false,
            },
            LruBalance::Workingset6 => RefaultAction {
                activate: distance.saturating_add(1) <= nr_active,
                deactivate_one: false,
            },
        }
    }
}

impl fmt::Display for LruBalance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LruBalance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LruBalance::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| format!("unknown balancing rule {s:?}"))
    }
}

/// Whether the inactive anonymous list is too small.
///
/// Mirrors mm/vmscan.c `inactive_anon_is_low()` with
/// mm/page_alloc.c `calculate_zone_inactive_ratio()` (2.6.28-4.x):
/// `inactive * inactive_ratio < active`, where the ratio is
/// `int_sqrt(10 * gigabytes of memory)`, or 1 below one gigabyte.
pub fn inactive_anon_is_low(active: u64, inactive: u64, total_pages: u64, page_size: u64) -> bool {
    inactive.saturating_mul(inactive_ratio(total_pages, page_size)) < active
}

/// The anonymous inactive ratio for a memory of `total_pages` pages.
pub fn inactive_ratio(total_pages: u64, page_size: u64) -> u64 {
    let gb = total_pages.saturating_mul(page_size) >> 30;
    if gb == 0 { 1 } else { (10 * gb).isqrt() }
}

/// The most shadow-only radix-tree nodes worth keeping.
///
/// Mirrors mm/workingset.c `count_shadow_nodes()` (3.15):
/// `max_nodes = node_present_pages >> (1 + RADIX_TREE_MAP_SHIFT - 3)`:
/// refault distances beyond the active list (at most half of memory) are
/// useless, and a node of 64 slots is assumed at least 1/8 full.
pub fn max_shadow_nodes(present_pages: u64, map_shift: u32) -> u64 {
    present_pages >> (1 + map_shift - 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_keeps_active_at_most_inactive() {
        let b = LruBalance::Classic;
        assert!(!b.inactive_file_is_low(10, 10));
        assert!(b.inactive_file_is_low(11, 10));
        assert_eq!(b.on_refault(0, 100), RefaultAction::default());
        assert!(!b.uses_shadows());
    }

    #[test]
    fn page_rule_deactivates_one_when_distance_is_below_active() {
        let b = LruBalance::RefaultDistance;
        assert!(!b.inactive_file_is_low(1000, 1));
        assert!(b.on_refault(99, 100).deactivate_one);
        assert!(!b.on_refault(100, 100).deactivate_one, "strictly less than");
        assert!(!b.on_refault(99, 100).activate);
    }

    #[test]
    fn merged_rule_activates_when_distance_is_at_most_active() {
        let b = LruBalance::Workingset315;
        assert!(b.on_refault(100, 100).activate, "at most");
        assert!(!b.on_refault(101, 100).activate);
        assert!(!b.on_refault(0, 100).deactivate_one);
        assert!(b.inactive_file_is_low(11, 10));
    }

    #[test]
    fn six_x_rule_counts_the_distance_one_larger_and_uses_the_square_root_ratio() {
        let b = LruBalance::Workingset6;
        // 3.15 activates at distance == active; 6.x's distance is one more.
        assert!(LruBalance::Workingset315.on_refault(100, 100).activate);
        assert!(!b.on_refault(100, 100).activate);
        assert!(b.on_refault(99, 100).activate);
        assert!(
            !b.on_refault(0, 0).activate,
            "an empty workingset keeps nothing"
        );
        // Below a gigabyte the ratio is 1: inactive < active.
        assert!(b.inactive_file_is_low(11, 10));
        assert!(!b.inactive_file_is_low(10, 10));
        // 4 GiB of file pages: ratio isqrt(40) = 6; 1 GiB inactive,
        // 3 GiB active: 1 * 6 >= 3, not low; 512 MiB inactive vs 3.5 GiB
        // active: 0.5 * 6 = 3 < 3.5, low.
        let gib = (1u64 << 30) / 4096;
        assert!(!b.inactive_file_is_low(3 * gib, gib));
        assert!(b.inactive_file_is_low(7 * gib / 2, gib / 2));
        assert!(b.deactivates_on_refaults() && b.scans_by_priority());
        for old in LruBalance::SEED {
            assert!(!old.deactivates_on_refaults() && !old.scans_by_priority());
        }
    }

    #[test]
    fn anon_ratio_is_the_integer_square_root_of_ten_gigabytes() {
        let page = 4096;
        let gib = (1u64 << 30) / page;
        assert_eq!(inactive_ratio(gib / 2, page), 1);
        assert_eq!(inactive_ratio(gib, page), 3); // isqrt(10)
        assert_eq!(inactive_ratio(10 * gib, page), 10); // isqrt(100)
        assert_eq!(inactive_ratio(1024 * gib, page), 101); // isqrt(10240)
        assert!(inactive_anon_is_low(31, 10, 10 * gib / 10, page)); // 10*1 < 31? ratio 3: 30 < 31
        assert!(!inactive_anon_is_low(30, 10, gib, page));
    }

    #[test]
    fn shadow_node_limit_is_one_sixteenth_of_memory_with_64_slot_nodes() {
        assert_eq!(max_shadow_nodes(262_144, 6), 16_384);
    }

    #[test]
    fn names_parse_back() {
        for b in LruBalance::ALL {
            assert_eq!(b.name().parse::<LruBalance>(), Ok(b));
        }
    }
}
