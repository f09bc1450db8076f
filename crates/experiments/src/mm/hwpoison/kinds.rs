//! Part 1 of `hwpoison`: one error in each kind of page, on a fresh small
//! machine, and the next use of the page.

use klab_lab::cells;
use klab_lab::report::{Report, Table};
use klab_mm_policy::LruBalance;
use klab_model::mm::memory_failure::{MfConfig, MfReport};
use klab_model::mm::page::KernelPage;
use klab_model::{Access, Machine, MachineConfig, Outcome};

/// One row of the table.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KindRow {
    /// The kind of page.
    pub page: String,
    /// The handler's result.
    pub result: String,
    /// The kernel's log line.
    pub message: String,
    /// Tasks signalled now that caught it.
    pub signalled: u64,
    /// Tasks killed now.
    pub killed: u64,
    /// Tasks whose entry became a hwpoison entry.
    pub unmapped: u64,
    /// What `fsync()` of the page's file said, if it has one.
    pub fsync: Option<String>,
    /// Whether data was lost.
    pub data_lost: bool,
    /// What the next use of the page saw.
    pub next: Option<String>,
}

fn outcome_name(o: Outcome) -> String {
    match o {
        Outcome::Hit => "hit".into(),
        Outcome::Miss => "read from disk".into(),
        Outcome::Refault { .. } => "refault from disk".into(),
        Outcome::AnonNew => "new zero page".into(),
        Outcome::SwapIn => "read from swap".into(),
        Outcome::OutOfMemory => "out of memory".into(),
        Outcome::Killed => "task already dead".into(),
        Outcome::SigBus { caught: true } => "SIGBUS BUS_MCEERR_AR, caught".into(),
        Outcome::SigBus { caught: false } => "SIGBUS BUS_MCEERR_AR, task killed".into(),
        Outcome::Panic => "machine down".into(),
    }
}

/// One case: a machine, the frame to poison, the next use.
struct Case {
    name: &'static str,
    setup: fn() -> (Machine, u64, Option<Access>),
}

fn config() -> MachineConfig {
    let mut cfg = MachineConfig::new(64, LruBalance::Classic);
    cfg.swap_pages = 64;
    cfg.reclaim_batch = 1;
    cfg
}

fn machine() -> Machine {
    Machine::new(config()).expect("valid machine")
}

/// A task-1 anonymous page 0 in the swap cache: written, swapped out by
/// filling memory, read back.
fn swapcache(dirty: bool) -> (Machine, u64, Option<Access>) {
    let mut m = machine();
    m.access(Access::anon(1, 0));
    for v in 1..=64 {
        m.access(Access::anon(2, v));
    }
    m.access(Access::anon_read(1, 0));
    if dirty {
        m.access(Access::anon(1, 0));
    }
    let pfn = m.anon_pfn(1, 0).expect("resident");
    (m, pfn.into(), Some(Access::anon_read(1, 0)))
}

fn dirty_anon(early: bool, catches: bool) -> (Machine, u64, Option<Access>) {
    let mut m = machine();
    m.set_memory_failure_config(MfConfig {
        recovery: true,
        early_kill: early,
    });
    m.set_catches_sigbus(1, catches);
    m.access(Access::anon(1, 0));
    let pfn = m.anon_pfn(1, 0).expect("resident");
    (m, pfn.into(), Some(Access::anon_read(1, 0)))
}

fn kernel(kind: KernelPage) -> (Machine, u64, Option<Access>) {
    let mut m = machine();
    let pfn = m.reserve_kernel_pages(kind, 1)[0];
    (m, pfn.into(), None)
}

fn file_page(write: bool) -> (Machine, u64, Option<Access>) {
    let mut m = machine();
    let a = if write {
        Access::write(5, 0)
    } else {
        Access::read(5, 0)
    };
    m.access(a);
    let pfn = m.file_pfn(5, 0).expect("cached");
    (m, pfn.into(), Some(Access::read(5, 0)))
}

/// Task 1 maps file 5 and touches page 0 through the mapping.
fn mapped(write: bool, early: bool) -> (Machine, u64, Option<Access>) {
    let mut m = machine();
    m.set_memory_failure_config(MfConfig {
        recovery: true,
        early_kill: early,
    });
    m.mmap_file(1, 5);
    let a = if write {
        Access::write(5, 0)
    } else {
        Access::read(5, 0)
    };
    m.access(a.by(1));
    let pfn = m.file_pfn(5, 0).expect("cached");
    (m, pfn.into(), Some(Access::read(5, 0).by(1)))
}

/// Kernel text, four frames loaded at boot: the error is in the first,
/// the next access runs it.
fn text() -> (Machine, u64, Option<Access>) {
    let mut cfg = config();
    cfg.kernel_text_pages = 4;
    let m = Machine::new(cfg).expect("valid machine");
    let pfn = m.kernel_text()[0];
    (m, pfn.into(), Some(Access::read(0, 0)))
}

/// Task 1's page table: its first touch takes a PTE page (frame 0) and a
/// data page; the next touch of the range walks it.
fn page_table() -> (Machine, u64, Option<Access>) {
    let mut cfg = config();
    cfg.page_tables = true;
    let mut m = Machine::new(cfg).expect("valid machine");
    m.access(Access::anon(1, 0));
    (m, 0, Some(Access::anon(1, 1)))
}

/// 20 pages of file 0 cached: one radix-tree node, an object of the
/// radix_tree_node cache in the one slab frame; the next read of file 0
/// looks up through it.
fn slab_objects() -> (Machine, u64, Option<Access>) {
    let mut cfg = config();
    cfg.slab = true;
    let mut m = Machine::new(cfg).expect("valid machine");
    for i in 0..20 {
        m.access(Access::read(0, i));
    }
    let pfn = m
        .kernel_slab()
        .and_then(|k| k.frames().next())
        .expect("a slab frame");
    (m, pfn.into(), Some(Access::read(0, 3)))
}

const CASES: &[Case] = &[
    Case {
        name: "free frame",
        setup: || (machine(), 63, Some(Access::read(0, 0))),
    },
    Case {
        name: "reserved kernel page (firmware, boot data)",
        setup: || kernel(KernelPage::Reserved),
    },
    Case {
        name: "kernel text page",
        setup: text,
    },
    Case {
        name: "buddy page in transit",
        setup: || kernel(KernelPage::Buddy),
    },
    Case {
        name: "slab page holding radix-tree nodes",
        setup: slab_objects,
    },
    Case {
        name: "page-table page",
        setup: page_table,
    },
    Case {
        name: "other kernel page (driver buffer)",
        setup: || kernel(KernelPage::Other),
    },
    Case {
        name: "huge page",
        setup: || {
            let mut m = machine();
            let pfn = m.map_huge(1, 1)[0];
            (m, pfn.into(), None)
        },
    },
    Case {
        name: "clean page cache",
        setup: || file_page(false),
    },
    Case {
        name: "dirty page cache",
        setup: || file_page(true),
    },
    Case {
        name: "mapped clean file page",
        setup: || mapped(false, false),
    },
    Case {
        name: "mapped dirty file page, late kill",
        setup: || mapped(true, false),
    },
    Case {
        name: "mapped dirty file page, early kill",
        setup: || mapped(true, true),
    },
    Case {
        name: "clean anonymous (never written)",
        setup: || {
            let mut m = machine();
            m.access(Access::anon_read(1, 0));
            let pfn = m.anon_pfn(1, 0).expect("resident");
            (m, pfn.into(), Some(Access::anon_read(1, 0)))
        },
    },
    Case {
        name: "dirty anonymous, late kill",
        setup: || dirty_anon(false, false),
    },
    Case {
        name: "dirty anonymous, late kill, SIGBUS handler",
        setup: || dirty_anon(false, true),
    },
    Case {
        name: "dirty anonymous, early kill",
        setup: || dirty_anon(true, false),
    },
    Case {
        name: "dirty anonymous, early kill, SIGBUS handler",
        setup: || dirty_anon(true, true),
    },
    Case {
        name: "clean swap cache",
        setup: || swapcache(false),
    },
    Case {
        name: "dirty swap cache",
        setup: || swapcache(true),
    },
    Case {
        name: "frame outside memory",
        setup: || (machine(), 1 << 20, None),
    },
];

fn row(name: &str, m: &mut Machine, rep: &MfReport, next: Option<Access>) -> KindRow {
    let fsync = rep.eio_file.map(|f| match m.fsync(f.0) {
        Err(e) => format!("EIO (errno {e})"),
        Ok(_) => "ok".into(),
    });
    KindRow {
        page: name.into(),
        result: rep.result.name().into(),
        message: rep.message(),
        signalled: rep.signalled.len() as u64,
        killed: rep.killed.len() as u64,
        unmapped: rep.unmapped.len() as u64,
        fsync,
        data_lost: rep.data_lost,
        next: next.map(|a| outcome_name(m.access(a))),
    }
}

/// Every case, then a second error on a poisoned frame.
pub(super) fn every_kind() -> Vec<KindRow> {
    let mut rows = Vec::new();
    for case in CASES {
        let (mut m, pfn, next) = (case.setup)();
        let rep = m.memory_failure(pfn);
        rows.push(row(case.name, &mut m, &rep, next));
        if cfg!(debug_assertions) {
            m.assert_invariants();
        }
    }
    let (mut m, pfn, _) = file_page(false);
    m.memory_failure(pfn);
    let again = m.memory_failure(pfn);
    rows.push(row("page already poisoned", &mut m, &again, None));
    rows
}

/// The table.
pub(super) fn report(rows: &[KindRow], r: &mut Report) {
    let mut t = Table::new(
        "one error in each kind of page",
        &[
            "page",
            "result",
            "kernel's message",
            "signalled now",
            "killed now",
            "entries unmapped",
            "file fsync",
            "data lost",
            "next use",
        ],
    );
    for k in rows {
        t.row(cells![
            k.page.as_str(),
            k.result.as_str(),
            k.message.as_str(),
            k.signalled,
            k.killed,
            k.unmapped,
            k.fsync.clone().unwrap_or_else(|| "-".into()),
            k.data_lost,
            k.next.clone().unwrap_or_else(|| "-".into())
        ]);
    }
    r.table(t);
}
