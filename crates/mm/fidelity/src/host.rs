//! Facts about the host kernel that decide how far a run on it can be
//! compared with the model: its release, whether MGLRU replaces the
//! active/inactive lists, swap, CPUs.

use std::path::Path;

/// The multi-generational LRU (mm/vmscan.c `lru_gen_*`, Linux 6.1+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mglru {
    /// Not built into this kernel (no `/sys/kernel/mm/lru_gen`).
    NotBuilt,
    /// Built in and switched off: the active/inactive lists are in use.
    Disabled,
    /// Switched on (the `enabled` mask, e.g. `0x0007`): page reclaim uses
    /// generations, not the two lists the model has.
    Enabled(u32),
}

/// What a comparison needs to know about the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel: String,
    /// The MGLRU switch.
    pub mglru: Mglru,
    /// Swap space, in 4 KiB pages (0: none; the 6.x refault test then
    /// compares with the active file list alone).
    pub swap_pages: u64,
    /// CPUs online.
    pub cpus: usize,
}

/// Reads the facts from `/proc` and `/sys`.
pub fn facts() -> HostFacts {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    HostFacts {
        kernel,
        mglru: mglru(Path::new("/sys/kernel/mm/lru_gen/enabled")),
        swap_pages: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| meminfo_kb(&m, "SwapTotal"))
            .map_or(0, |kb| kb / 4),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn mglru(enabled: &Path) -> Mglru {
    match std::fs::read_to_string(enabled) {
        Err(_) => Mglru::NotBuilt,
        Ok(s) => match u32::from_str_radix(s.trim().trim_start_matches("0x"), 16) {
            Ok(0) => Mglru::Disabled,
            Ok(mask) => Mglru::Enabled(mask),
            // "y"/"n" are accepted on write; the kernel prints the mask.
            Err(_) if s.trim() == "n" => Mglru::Disabled,
            Err(_) => Mglru::Enabled(1),
        },
    }
}

fn meminfo_kb(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

impl HostFacts {
    /// One line per fact, for a report's notes.
    pub fn notes(&self) -> Vec<String> {
        let mglru = match self.mglru {
            Mglru::NotBuilt => "MGLRU: not built into this kernel (no /sys/kernel/mm/lru_gen): \
                                reclaim uses the active/inactive lists the model has"
                .to_owned(),
            Mglru::Disabled => {
                "MGLRU: built in but disabled: reclaim uses the active/inactive lists".to_owned()
            }
            Mglru::Enabled(mask) => format!(
                "MGLRU: enabled (mask {mask:#06x}): reclaim uses generations, not the \
                 active/inactive lists of the model; a run does not switch it off (a global \
                 setting, which an interrupted run could not be sure to restore)"
            ),
        };
        vec![
            format!("host kernel {}, {} CPUs", self.kernel, self.cpus),
            mglru,
            if self.swap_pages == 0 {
                "no swap: the kernel's refault test compares a refault distance with the active \
                 file list alone, as 3.15 did"
                    .to_owned()
            } else {
                format!(
                    "swap of {} pages: the 6.x refault test adds the anonymous lists to the active \
                     file list",
                    self.swap_pages
                )
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mglru_switch_reads_as_the_kernel_prints_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("enabled");
        assert_eq!(mglru(&f), Mglru::NotBuilt);
        for (text, want) in [
            ("0x0000\n", Mglru::Disabled),
            ("0x0007\n", Mglru::Enabled(7)),
            ("0x0001\n", Mglru::Enabled(1)),
        ] {
            std::fs::write(&f, text).unwrap();
            assert_eq!(mglru(&f), want, "{text:?}");
        }
    }

    #[test]
    fn swap_total_is_read_in_pages() {
        let m = "MemTotal: 100 kB\nSwapTotal:       8192 kB\n";
        assert_eq!(meminfo_kb(m, "SwapTotal"), Some(8192));
        assert_eq!(meminfo_kb(m, "SwapFree"), None);
        let f = facts();
        assert!(!f.kernel.is_empty() && f.cpus >= 1);
        assert_eq!(f.notes().len(), 3);
    }
}
