//! Paravirtual operations: one table of the privileged operations the VMI
//! page names, bound at boot to the hypervisor's calls or to native ones.
//!
//! Seed 004_9e86ca0f77558f15.txt, "The VMI virtualization interface"
//! (LWN, March 2006): the calls are "very low-level - operations like
//! changing page protections, enabling interrupts, writing model-specific
//! registers, changing specific control registers, dealing with timer
//! events"; a booting kernel "search[es] for a 'VMI ROM' provided by the
//! hypervisor", and "modifies its own code to use the hypervisor's functions
//! without table lookups or indirect function calls", so that the same
//! kernel runs "under any VMI hypervisor without modification - or even
//! recompilation" and on bare hardware, where "VMI Linux has negligible
//! overheads". Mirrors arch/x86/include/asm/paravirt_types.h and
//! arch/x86/kernel/paravirt.c (`struct paravirt_patch_site`,
//! `paravirt_patch_default()`, `apply_paravirt()`), and
//! arch/x86/kernel/vmi_32.c (`probe_vmi_rom()`, `vmi_patch()`: CALL_REL,
//! NOP or NONE per operation); `docs/REFERENCE.md` §14.
//!
//! # Data structures
//!
//! ```text
//!   PvOp                    one variant per operation (the patch-site
//!                           "type"; from klab_paravirt)
//!   HvRom                   a hypervisor's ROM: signature, API version, and a
//!                           relocation per operation (Call | Nop | Native),
//!                           the call's cost and whether it exits
//!   Disposition             what one bound operation does: a native
//!                           instruction, an in-guest ROM call, a hypercall
//!                           (an exit), a call batched until lazy MMU mode
//!                           ends, or nothing
//!   Paravirt                the bound dispositions and PvStats, counted
//!                           in the machine's mm paths
//! ```
//!
//! The same table called for real on the host, in three binding forms and
//! timed, is the `klab-paravirt` crate.
//!
//! # Binding
//!
//! [`probe_rom`] scans the option-ROM area for a hypervisor ROM and checks
//! its signature and API version (`probe_vmi_rom()`); [`Paravirt::bind`]
//! takes each operation's disposition from its relocation (native entries
//! without a ROM), as `vmi_patch()` rewrites each call site once at boot.
//!
//! # Invariants
//!
//! * `PvStats::calls[op]` = calls of `op`; `native + rom_calls + hypercalls
//!   + batched + nops = Σ calls` ([`PvStats::assert_invariants`]).
//! * `flushes <= batched` batches: every batched call is issued by exactly
//!   one flush, so outside lazy MMU mode `pending == 0`.
//!
//! # The model hypervisors
//!
//! Two, with different behaviour and costs (model parameters, in cycles,
//! not measurements): [`Hypervisor::Vmi`], VMware's ROM, where interrupt
//! flag and page-table updates run inside the guest in ROM code (the
//! shadow page table updated by the ROM) and control registers, MSRs, TLB
//! flushes and the timer exit to the monitor; and [`Hypervisor::Xen`], a
//! hypercall interface where the interrupt flag is a mask in shared memory
//! (no exit), every page-table update is an `mmu_update` hypercall unless
//! queued in lazy MMU mode (`arch_enter_lazy_mmu_mode()`, one multicall per
//! batch), and control-register, MSR and timer operations are hypercalls.

pub use klab_paravirt::{BackendKind, Hypervisor, NR_PV_OPS, PvOp};
use serde::{Deserialize, Serialize};

/// A ROM's relocation for one operation (vmi_32.c's `VMI_RELOCATION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reloc {
    /// `CALL_REL`: call this ROM entry; `exits` when it traps to the
    /// monitor, at `cost` cycles.
    Call {
        /// The call leaves the guest (a VM exit / hypercall).
        exits: bool,
        /// Queued while in lazy MMU mode and issued as one call per batch.
        batches: bool,
        /// Model cost of one call, in cycles.
        cost: u64,
    },
    /// `NOP`: the operation is not needed under this hypervisor.
    Nop,
    /// `NONE`: use the native instruction.
    Native,
}

/// Model cost of a native privileged instruction, in cycles.
pub const NATIVE_COST: u64 = 4;
/// Model cost of an in-guest call into ROM code that does not exit.
pub const ROM_CALL_COST: u64 = 25;
/// Model cost of a write to a shared-memory mask (Xen's interrupt flag).
pub const SHARED_FLAG_COST: u64 = 6;
/// Model cost of a VMI exit to the monitor.
pub const VMI_EXIT_COST: u64 = 2_000;
/// Model cost of a Xen hypercall.
pub const XEN_HYPERCALL_COST: u64 = 1_200;

/// The ROM signature `probe_rom` looks for ("VMI" and a marker; vmi_32.c
/// checks `VMI_SIGNATURE` = 0x696d5663, "cVmi").
pub const VMI_SIGNATURE: u32 = 0x696d_5663;
/// The API major version this kernel speaks (`VMI_API_REV_MAJOR`).
pub const VMI_API_MAJOR: u16 = 3;

/// A hypervisor ROM found in the option-ROM area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HvRom {
    /// Must be [`VMI_SIGNATURE`].
    pub signature: u32,
    /// Must equal [`VMI_API_MAJOR`].
    pub api_major: u16,
    /// Any.
    pub api_minor: u16,
    /// Whose ROM it is (what its entry points do).
    pub hypervisor: Hypervisor,
}

impl HvRom {
    /// The ROM `h` puts in the guest's option-ROM area.
    pub fn of(h: Hypervisor) -> HvRom {
        HvRom {
            signature: VMI_SIGNATURE,
            api_major: VMI_API_MAJOR,
            api_minor: 1,
            hypervisor: h,
        }
    }

    /// The ROM of a backend, if any.
    pub fn of_backend(kind: BackendKind) -> Option<HvRom> {
        match kind {
            BackendKind::Native => None,
            BackendKind::Hv(h) => Some(HvRom::of(h)),
        }
    }

    /// The relocation the ROM gives for `op` (`vmi_get_function()` with the
    /// relocation info).
    pub fn reloc(&self, op: PvOp) -> Reloc {
        let rom = |cost| Reloc::Call {
            exits: false,
            batches: false,
            cost,
        };
        let exit = |cost| Reloc::Call {
            exits: true,
            batches: false,
            cost,
        };
        match self.hypervisor {
            Hypervisor::Vmi => match op {
                // The virtual interrupt flag lives in a page the ROM code
                // writes without leaving the guest; page-table writes go
                // through the ROM, which keeps the shadow table in step.
                PvOp::SaveFl
                | PvOp::RestoreFl
                | PvOp::IrqDisable
                | PvOp::IrqEnable
                | PvOp::SetPte => rom(ROM_CALL_COST),
                PvOp::FlushTlbSingle
                | PvOp::WriteMsr
                | PvOp::WriteCr0
                | PvOp::WriteCr3
                | PvOp::WriteCr4
                | PvOp::TimerSetNext => exit(VMI_EXIT_COST),
            },
            Hypervisor::Xen => match op {
                PvOp::SaveFl | PvOp::RestoreFl | PvOp::IrqDisable | PvOp::IrqEnable => {
                    rom(SHARED_FLAG_COST)
                }
                // mmu_update / mmuext_op: queued as a multicall in lazy
                // MMU mode.
                PvOp::SetPte | PvOp::FlushTlbSingle => Reloc::Call {
                    exits: true,
                    batches: true,
                    cost: XEN_HYPERCALL_COST,
                },
                // A PV guest's CR4 is the hypervisor's business.
                PvOp::WriteCr4 => Reloc::Nop,
                PvOp::WriteMsr | PvOp::WriteCr0 | PvOp::WriteCr3 | PvOp::TimerSetNext => {
                    exit(XEN_HYPERCALL_COST)
                }
            },
        }
    }
}

/// Why a ROM was not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RomError {
    /// The signature is not VMI's.
    #[error("option ROM at slot {slot}: signature {found:#x}, not VMI's {VMI_SIGNATURE:#x}")]
    Signature {
        /// Where in the ROM area.
        slot: usize,
        /// What was there.
        found: u32,
    },
    /// An API version this kernel does not speak.
    #[error("VMI ROM at slot {slot}: API {major}.{minor}, this kernel speaks {VMI_API_MAJOR}.x")]
    Version {
        /// Where in the ROM area.
        slot: usize,
        /// The ROM's major version.
        major: u16,
        /// The ROM's minor version.
        minor: u16,
    },
}

/// Scans the option ROMs for a hypervisor ROM (`probe_vmi_rom()`): the
/// first with the signature and a matching major version; `Err` lists the
/// ROMs skipped and why when none qualifies. `novmi` (the boot option)
/// skips the scan.
pub fn probe_rom(roms: &[HvRom], novmi: bool) -> (Option<HvRom>, Vec<RomError>) {
    let mut skipped = Vec::new();
    if novmi {
        return (None, skipped);
    }
    for (slot, r) in roms.iter().enumerate() {
        if r.signature != VMI_SIGNATURE {
            skipped.push(RomError::Signature {
                slot,
                found: r.signature,
            });
            continue;
        }
        if r.api_major != VMI_API_MAJOR {
            skipped.push(RomError::Version {
                slot,
                major: r.api_major,
                minor: r.api_minor,
            });
            continue;
        }
        return (Some(*r), skipped);
    }
    (None, skipped)
}

/// What a bound operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// The native instruction.
    Native,
    /// A call into ROM code that stays in the guest.
    RomCall(u64),
    /// An exit to the hypervisor.
    Hypercall(u64),
    /// An exit, batched while in lazy MMU mode.
    Batched(u64),
    /// Nothing.
    Nop,
}

impl Disposition {
    fn of(rom: Option<&HvRom>, op: PvOp) -> Disposition {
        match rom.map(|r| r.reloc(op)) {
            None | Some(Reloc::Native) => Disposition::Native,
            Some(Reloc::Nop) => Disposition::Nop,
            Some(Reloc::Call {
                exits: false, cost, ..
            }) => Disposition::RomCall(cost),
            Some(Reloc::Call {
                exits: true,
                batches: false,
                cost,
            }) => Disposition::Hypercall(cost),
            Some(Reloc::Call {
                exits: true,
                batches: true,
                cost,
            }) => Disposition::Batched(cost),
        }
    }
}

/// Calls counted by the model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvStats {
    /// Calls per operation, in [`PvOp::ALL`] order.
    pub calls: [u64; NR_PV_OPS],
    /// Calls that ran the native instruction.
    pub native: u64,
    /// Calls into ROM code that stayed in the guest.
    pub rom_calls: u64,
    /// Calls that exited to the hypervisor one by one.
    pub hypercalls: u64,
    /// Calls queued in lazy MMU mode.
    pub batched: u64,
    /// Batches issued (one exit each).
    pub flushes: u64,
    /// Calls that did nothing.
    pub nops: u64,
    /// Modelled cycles of all calls (native instructions included).
    pub cycles: u64,
}

impl PvStats {
    /// Every exit to the hypervisor: single hypercalls and batch flushes.
    pub fn exits(&self) -> u64 {
        self.hypercalls + self.flushes
    }

    /// Calls of every operation.
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// Calls of `op`.
    pub fn of(&self, op: PvOp) -> u64 {
        self.calls[op as usize]
    }

    /// Checks the header's invariants.
    pub fn assert_invariants(&self) {
        assert_eq!(
            self.native + self.rom_calls + self.hypercalls + self.batched + self.nops,
            self.total_calls(),
            "every call has one disposition"
        );
        assert!(
            self.flushes <= self.batched,
            "a flush issues at least one call"
        );
    }
}

/// The table as the model machine uses it: dispositions bound at boot and
/// the calls counted. Kernel paths call the helpers ([`Paravirt::lock_irq`],
/// [`Paravirt::set_pte`], ...), named after the kernel functions that make
/// the calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "ParavirtState", into = "ParavirtState")]
pub struct Paravirt {
    backend: BackendKind,
    table: [Disposition; NR_PV_OPS],
    lazy_mmu: bool,
    pending: u64,
    pending_cost: u64,
    /// The task whose address space is loaded (CR3), for switch counting.
    current_mm: Option<u32>,
    stats: PvStats,
}

/// What of [`Paravirt`] is saved: the table is rebuilt from the backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ParavirtState {
    backend: BackendKind,
    lazy_mmu: bool,
    pending: u64,
    pending_cost: u64,
    current_mm: Option<u32>,
    stats: PvStats,
}

impl From<ParavirtState> for Paravirt {
    fn from(s: ParavirtState) -> Self {
        let mut p = Paravirt::bind(s.backend);
        p.lazy_mmu = s.lazy_mmu;
        p.pending = s.pending;
        p.pending_cost = s.pending_cost;
        p.current_mm = s.current_mm;
        p.stats = s.stats;
        p
    }
}

impl From<Paravirt> for ParavirtState {
    fn from(p: Paravirt) -> Self {
        ParavirtState {
            backend: p.backend,
            lazy_mmu: p.lazy_mmu,
            pending: p.pending,
            pending_cost: p.pending_cost,
            current_mm: p.current_mm,
            stats: p.stats,
        }
    }
}

impl Default for Paravirt {
    fn default() -> Self {
        Paravirt::bind(BackendKind::Native)
    }
}

impl Paravirt {
    /// The table bound to `backend` (its ROM's relocations, or native).
    pub fn bind(backend: BackendKind) -> Self {
        let rom = HvRom::of_backend(backend);
        let mut table = [Disposition::Native; NR_PV_OPS];
        for op in PvOp::ALL {
            table[op as usize] = Disposition::of(rom.as_ref(), op);
        }
        Paravirt {
            backend,
            table,
            lazy_mmu: false,
            pending: 0,
            pending_cost: 0,
            current_mm: None,
            stats: PvStats::default(),
        }
    }

    /// Binds the table at boot from the option ROMs found
    /// ([`probe_rom`]); native when none qualifies.
    pub fn boot(roms: &[HvRom], novmi: bool) -> Self {
        match probe_rom(roms, novmi).0 {
            Some(r) => Paravirt::bind(BackendKind::Hv(r.hypervisor)),
            None => Paravirt::bind(BackendKind::Native),
        }
    }

    /// The backend.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// What `op` does under this binding.
    pub fn disposition(&self, op: PvOp) -> Disposition {
        self.table[op as usize]
    }

    /// Counters.
    pub fn stats(&self) -> &PvStats {
        &self.stats
    }

    /// One call of `op`.
    #[inline]
    pub fn call(&mut self, op: PvOp) {
        self.stats.calls[op as usize] += 1;
        match self.table[op as usize] {
            Disposition::Native => {
                self.stats.native += 1;
                self.stats.cycles += NATIVE_COST;
            }
            Disposition::RomCall(c) => {
                self.stats.rom_calls += 1;
                self.stats.cycles += c;
            }
            Disposition::Hypercall(c) => {
                self.stats.hypercalls += 1;
                self.stats.cycles += c;
            }
            Disposition::Batched(c) if self.lazy_mmu => {
                self.stats.batched += 1;
                self.pending += 1;
                self.pending_cost = c;
            }
            Disposition::Batched(c) => {
                self.stats.hypercalls += 1;
                self.stats.cycles += c;
            }
            Disposition::Nop => self.stats.nops += 1,
        }
    }

    /// `arch_enter_lazy_mmu_mode()`.
    pub fn enter_lazy_mmu(&mut self) {
        self.lazy_mmu = true;
    }

    /// `arch_leave_lazy_mmu_mode()`: issues the queued calls as one batch.
    pub fn leave_lazy_mmu(&mut self) {
        self.lazy_mmu = false;
        if self.pending > 0 {
            self.stats.flushes += 1;
            self.stats.cycles += self.pending_cost;
            self.pending = 0;
        }
    }

    /// `spin_lock_irq()` ... `spin_unlock_irq()`: interrupts off, then on.
    #[inline]
    pub fn lock_irq(&mut self) {
        self.call(PvOp::IrqDisable);
        self.call(PvOp::IrqEnable);
    }

    /// `spin_lock_irqsave()` ... `spin_unlock_irqrestore()`: the flags
    /// saved, interrupts off, the flags restored.
    #[inline]
    pub fn lock_irqsave(&mut self) {
        self.call(PvOp::SaveFl);
        self.call(PvOp::IrqDisable);
        self.call(PvOp::RestoreFl);
    }

    /// `set_pte_at()`: a mapping installed or changed.
    #[inline]
    pub fn set_pte(&mut self) {
        self.call(PvOp::SetPte);
    }

    /// `ptep_clear_flush()`: an entry cleared (or replaced by a swap entry)
    /// and the stale translation flushed.
    #[inline]
    pub fn clear_flush(&mut self) {
        self.call(PvOp::SetPte);
        self.call(PvOp::FlushTlbSingle);
    }

    /// `switch_mm()` and `__switch_to()` when the CPU moves to another
    /// task's address space: CR3 loaded, and the FS base MSR written for
    /// the new thread's TLS (x86-64 `__switch_to()`). Nothing when the task
    /// is already current.
    #[inline]
    pub fn switch_to(&mut self, task: u32) {
        if self.current_mm != Some(task) {
            self.current_mm = Some(task);
            self.call(PvOp::WriteCr3);
            self.call(PvOp::WriteMsr);
        }
    }

    /// A task's address space went away (`exit_mmap()`): the next switch
    /// loads a new CR3 even for the same id.
    pub fn drop_mm(&mut self, task: u32) {
        if self.current_mm == Some(task) {
            self.current_mm = None;
        }
    }

    /// `clockevents_program_event()`: the next timer event programmed.
    #[inline]
    pub fn program_timer(&mut self) {
        self.call(PvOp::TimerSetNext);
    }

    /// `stts()` / `clts()`: the FPU's task-switched bit in CR0.
    #[inline]
    pub fn write_cr0(&mut self) {
        self.call(PvOp::WriteCr0);
    }

    /// `set_in_cr4()` (a CPU feature enabled at boot).
    #[inline]
    pub fn write_cr4(&mut self) {
        self.call(PvOp::WriteCr4);
    }

    /// Checks the counters.
    pub fn assert_invariants(&self) {
        self.stats.assert_invariants();
        assert!(
            self.lazy_mmu || self.pending == 0,
            "queued calls outside lazy MMU mode"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_takes_the_first_valid_rom_and_says_why_others_were_skipped() {
        let bad_sig = HvRom {
            signature: 0xaa55,
            ..HvRom::of(Hypervisor::Xen)
        };
        let old = HvRom {
            api_major: 2,
            ..HvRom::of(Hypervisor::Vmi)
        };
        let (found, skipped) = probe_rom(&[bad_sig, old, HvRom::of(Hypervisor::Xen)], false);
        assert_eq!(found, Some(HvRom::of(Hypervisor::Xen)));
        assert_eq!(skipped.len(), 2);
        assert_eq!(
            skipped[1].to_string(),
            "VMI ROM at slot 1: API 2.1, this kernel speaks 3.x"
        );
        assert_eq!(
            probe_rom(&[HvRom::of(Hypervisor::Vmi)], true).0,
            None,
            "novmi"
        );
        assert_eq!(
            Paravirt::boot(&[], false).backend(),
            BackendKind::Native,
            "no ROM: native"
        );
    }

    #[test]
    fn each_hypervisor_binds_its_own_relocations() {
        let vmi = Paravirt::bind(BackendKind::Hv(Hypervisor::Vmi));
        assert_eq!(
            vmi.disposition(PvOp::IrqDisable),
            Disposition::RomCall(ROM_CALL_COST)
        );
        assert_eq!(
            vmi.disposition(PvOp::WriteCr3),
            Disposition::Hypercall(VMI_EXIT_COST)
        );
        let xen = Paravirt::bind(BackendKind::Hv(Hypervisor::Xen));
        assert_eq!(
            xen.disposition(PvOp::SetPte),
            Disposition::Batched(XEN_HYPERCALL_COST)
        );
        assert_eq!(xen.disposition(PvOp::WriteCr4), Disposition::Nop);
        let native = Paravirt::default();
        assert!(
            PvOp::ALL
                .iter()
                .all(|&op| native.disposition(op) == Disposition::Native)
        );
    }

    #[test]
    fn lazy_mmu_mode_batches_xen_page_table_updates_into_one_exit() {
        let mut p = Paravirt::bind(BackendKind::Hv(Hypervisor::Xen));
        p.enter_lazy_mmu();
        for _ in 0..5 {
            p.clear_flush();
        }
        p.leave_lazy_mmu();
        p.set_pte();
        p.lock_irqsave();
        let s = p.stats();
        // 10 queued calls, one flush; the set_pte outside lazy mode exits
        // alone; the three irq calls stay in the guest.
        assert_eq!(
            (s.batched, s.flushes, s.hypercalls, s.rom_calls),
            (10, 1, 1, 3)
        );
        assert_eq!(s.exits(), 2);
        assert_eq!(
            s.cycles,
            2 * XEN_HYPERCALL_COST + 3 * SHARED_FLAG_COST,
            "one batch and one hypercall"
        );
        p.assert_invariants();
        // VMI has no batching: each flush exits, each pte write is a ROM call.
        let mut v = Paravirt::bind(BackendKind::Hv(Hypervisor::Vmi));
        v.enter_lazy_mmu();
        v.clear_flush();
        v.leave_lazy_mmu();
        assert_eq!((v.stats().rom_calls, v.stats().hypercalls), (1, 1));
        v.assert_invariants();
    }

    #[test]
    fn a_switch_loads_cr3_and_the_fs_base_once_per_change_of_task() {
        let mut p = Paravirt::default();
        p.switch_to(1);
        p.switch_to(1);
        p.switch_to(2);
        p.drop_mm(2);
        p.switch_to(2);
        assert_eq!(p.stats().of(PvOp::WriteCr3), 3);
        assert_eq!(p.stats().of(PvOp::WriteMsr), 3);
        assert_eq!(p.stats().cycles, 6 * NATIVE_COST);
    }
}
