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
//!   PvOp                    one variant per operation (the patch-site "type")
//!   HvRom                   a hypervisor's ROM: signature, API version, and a
//!                           relocation per operation (Call | Nop | Native),
//!                           the call's cost and whether it exits
//!   Disposition             what one bound operation does: a native
//!                           instruction, an in-guest ROM call, a hypercall
//!                           (an exit), a call batched until lazy MMU mode
//!                           ends, or nothing
//!
//!   host side (real calls, timed by benches/paravirt.rs):
//!     Cpu                   the registers the operations change
//!     PvOpsTable            pv_ops: one fn pointer per operation
//!     PvBackend             the same operations as static functions, one
//!                           type per backend (Native, VmiRom, XenHcall)
//!     Ops                   how kernel code calls them: Direct (no
//!                           paravirt), &PvOpsTable (indirect through the
//!                           table), Bound<B> (bound once at boot)
//!
//!   model side (counted, in the machine's mm paths):
//!     Paravirt              the bound dispositions and PvStats
//! ```
//!
//! # Binding
//!
//! [`probe_rom`] scans the option-ROM area for a hypervisor ROM and checks
//! its signature and API version (`probe_vmi_rom()`); [`PvOpsTable::bind`]
//! fills the table from it (native entries without one). Two forms of call
//! site: an **indirect call** through the table (`paravirt_ops` before
//! patching: one load and an indirect call per operation), and a call
//! **bound at boot**: the kernel picks the backend once ([`boot_bound`]),
//! and every call site after that is a direct, inlinable call for that
//! backend: in C the patcher rewrites each site (`paravirt_patch_default()`
//! turns the indirect call into a direct one, `native_patch()` copies
//! `cli`/`sti` in place); in Rust, code monomorphized per backend and
//! selected by one `match` at boot does the same work at compile time.
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

use serde::{Deserialize, Serialize};

/// The operations of the table, in patch-site type order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PvOp {
    /// `pv_irq_ops.save_fl` (`pushf; pop`).
    SaveFl,
    /// `pv_irq_ops.restore_fl` (`push; popf`).
    RestoreFl,
    /// `pv_irq_ops.irq_disable` (`cli`).
    IrqDisable,
    /// `pv_irq_ops.irq_enable` (`sti`).
    IrqEnable,
    /// `pv_mmu_ops.set_pte`: a page-table entry written (a mapping or its
    /// protection changed, or cleared).
    SetPte,
    /// `pv_mmu_ops.flush_tlb_single` (`invlpg`).
    FlushTlbSingle,
    /// `pv_cpu_ops.write_msr` (`wrmsr`).
    WriteMsr,
    /// `pv_cpu_ops.write_cr0`.
    WriteCr0,
    /// `pv_mmu_ops.write_cr3`: an address-space switch.
    WriteCr3,
    /// `pv_cpu_ops.write_cr4`.
    WriteCr4,
    /// The timer: program the next clock event (VMI's `vmi_timer_set_next_event`,
    /// Xen's `set_timer_op`).
    TimerSetNext,
}

/// Operations in the table.
pub const NR_PV_OPS: usize = 11;

impl PvOp {
    /// Every operation, in table order.
    pub const ALL: [PvOp; NR_PV_OPS] = [
        PvOp::SaveFl,
        PvOp::RestoreFl,
        PvOp::IrqDisable,
        PvOp::IrqEnable,
        PvOp::SetPte,
        PvOp::FlushTlbSingle,
        PvOp::WriteMsr,
        PvOp::WriteCr0,
        PvOp::WriteCr3,
        PvOp::WriteCr4,
        PvOp::TimerSetNext,
    ];

    /// The kernel's name of the table entry.
    pub fn name(self) -> &'static str {
        match self {
            PvOp::SaveFl => "save_fl",
            PvOp::RestoreFl => "restore_fl",
            PvOp::IrqDisable => "irq_disable",
            PvOp::IrqEnable => "irq_enable",
            PvOp::SetPte => "set_pte",
            PvOp::FlushTlbSingle => "flush_tlb_single",
            PvOp::WriteMsr => "write_msr",
            PvOp::WriteCr0 => "write_cr0",
            PvOp::WriteCr3 => "write_cr3",
            PvOp::WriteCr4 => "write_cr4",
            PvOp::TimerSetNext => "set_next_event",
        }
    }

    /// Which of the page's groups the operation belongs to.
    pub fn group(self) -> &'static str {
        match self {
            PvOp::SaveFl | PvOp::RestoreFl | PvOp::IrqDisable | PvOp::IrqEnable => "interrupts",
            PvOp::SetPte | PvOp::FlushTlbSingle => "page protections",
            PvOp::WriteMsr => "model-specific registers",
            PvOp::WriteCr0 | PvOp::WriteCr3 | PvOp::WriteCr4 => "control registers",
            PvOp::TimerSetNext => "timer events",
        }
    }
}

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

/// The model hypervisors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Hypervisor {
    /// VMware's VMI ROM.
    Vmi,
    /// A Xen-style hypercall interface.
    Xen,
}

impl Hypervisor {
    /// Both.
    pub const ALL: [Hypervisor; 2] = [Hypervisor::Vmi, Hypervisor::Xen];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Hypervisor::Vmi => "vmi",
            Hypervisor::Xen => "xen",
        }
    }

    /// The ROM this hypervisor puts in the guest's option-ROM area.
    pub fn rom(self) -> HvRom {
        HvRom {
            signature: VMI_SIGNATURE,
            api_major: VMI_API_MAJOR,
            api_minor: 1,
            hypervisor: self,
        }
    }
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

/// Which backend the table is bound to.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum BackendKind {
    /// Bare hardware: native instructions.
    #[default]
    Native,
    /// Under a hypervisor, through its ROM.
    Hv(Hypervisor),
}

impl BackendKind {
    /// Native, then each hypervisor.
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Native,
        BackendKind::Hv(Hypervisor::Vmi),
        BackendKind::Hv(Hypervisor::Xen),
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Native => "native",
            BackendKind::Hv(h) => h.name(),
        }
    }

    /// The ROM of this backend, if any.
    pub fn rom(self) -> Option<HvRom> {
        match self {
            BackendKind::Native => None,
            BackendKind::Hv(h) => Some(h.rom()),
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
        let rom = backend.rom();
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

// ---------------------------------------------------------------------------
// The host side: real calls, for timing the binding forms.

/// The CPU state the operations change (a user-space stand-in for the
/// registers: the host cannot execute `cli` or `wrmsr`).
#[derive(Clone, Debug)]
pub struct Cpu {
    /// EFLAGS; bit 9 is IF.
    pub flags: u64,
    /// CR0, CR3, CR4.
    pub cr: [u64; 3],
    /// Four MSRs (FS base, GS base, ...), indexed by the low bits.
    pub msr: [u64; 4],
    /// A page table.
    pub ptes: Vec<u64>,
    /// TLB entries flushed.
    pub tlb_flushes: u64,
    /// The next timer deadline.
    pub timer: u64,
    /// What the hypervisor did: exits, ROM calls, its shadow page table and
    /// virtual interrupt flag.
    pub hv: HvSide,
}

/// The hypervisor's side of [`Cpu`].
#[derive(Clone, Debug, Default)]
pub struct HvSide {
    /// Exits to the monitor.
    pub exits: u64,
    /// ROM calls that stayed in the guest.
    pub rom_calls: u64,
    /// The shadow page table the monitor keeps.
    pub shadow: Vec<u64>,
    /// The virtual interrupt flag (VMI) or event mask (Xen).
    pub virq_enabled: bool,
}

/// EFLAGS.IF.
pub const X86_EFLAGS_IF: u64 = 1 << 9;

impl Cpu {
    /// A CPU with `ptes` page-table entries, interrupts on.
    pub fn new(ptes: usize) -> Self {
        Cpu {
            flags: X86_EFLAGS_IF | 2,
            cr: [0x8005_0033, 0x1000, 0x6f0],
            msr: [0; 4],
            ptes: vec![0; ptes],
            tlb_flushes: 0,
            timer: 0,
            hv: HvSide {
                shadow: vec![0; ptes],
                virq_enabled: true,
                ..HvSide::default()
            },
        }
    }
}

/// `pv_ops`: one function pointer per operation.
#[derive(Clone, Copy, Debug)]
pub struct PvOpsTable {
    /// [`PvOp::SaveFl`].
    pub save_fl: fn(&Cpu) -> u64,
    /// [`PvOp::RestoreFl`].
    pub restore_fl: fn(&mut Cpu, u64),
    /// [`PvOp::IrqDisable`].
    pub irq_disable: fn(&mut Cpu),
    /// [`PvOp::IrqEnable`].
    pub irq_enable: fn(&mut Cpu),
    /// [`PvOp::SetPte`].
    pub set_pte: fn(&mut Cpu, usize, u64),
    /// [`PvOp::FlushTlbSingle`].
    pub flush_tlb_single: fn(&mut Cpu, u64),
    /// [`PvOp::WriteMsr`].
    pub write_msr: fn(&mut Cpu, u32, u64),
    /// [`PvOp::WriteCr0`].
    pub write_cr0: fn(&mut Cpu, u64),
    /// [`PvOp::WriteCr3`].
    pub write_cr3: fn(&mut Cpu, u64),
    /// [`PvOp::WriteCr4`].
    pub write_cr4: fn(&mut Cpu, u64),
    /// [`PvOp::TimerSetNext`].
    pub set_next_event: fn(&mut Cpu, u64),
}

/// One backend's operations as static functions.
pub trait PvBackend {
    /// Which backend.
    const KIND: BackendKind;
    /// `save_fl`.
    fn save_fl(cpu: &Cpu) -> u64;
    /// `restore_fl`.
    fn restore_fl(cpu: &mut Cpu, flags: u64);
    /// `irq_disable`.
    fn irq_disable(cpu: &mut Cpu);
    /// `irq_enable`.
    fn irq_enable(cpu: &mut Cpu);
    /// `set_pte`.
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64);
    /// `flush_tlb_single`.
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64);
    /// `write_msr`.
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64);
    /// `write_cr0`.
    fn write_cr0(cpu: &mut Cpu, v: u64);
    /// `write_cr3`.
    fn write_cr3(cpu: &mut Cpu, v: u64);
    /// `write_cr4`.
    fn write_cr4(cpu: &mut Cpu, v: u64);
    /// `set_next_event`.
    fn set_next_event(cpu: &mut Cpu, deadline: u64);

    /// The table filled with this backend's functions.
    fn table() -> PvOpsTable {
        PvOpsTable {
            save_fl: Self::save_fl,
            restore_fl: Self::restore_fl,
            irq_disable: Self::irq_disable,
            irq_enable: Self::irq_enable,
            set_pte: Self::set_pte,
            flush_tlb_single: Self::flush_tlb_single,
            write_msr: Self::write_msr,
            write_cr0: Self::write_cr0,
            write_cr3: Self::write_cr3,
            write_cr4: Self::write_cr4,
            set_next_event: Self::set_next_event,
        }
    }
}

/// The native instructions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Native;

/// The instructions themselves, for kernels without paravirt and for the
/// [`Native`] backend.
pub mod native {
    use super::{Cpu, X86_EFLAGS_IF};

    /// `pushf; pop`.
    #[inline]
    pub fn save_fl(cpu: &Cpu) -> u64 {
        cpu.flags
    }
    /// `push; popf`.
    #[inline]
    pub fn restore_fl(cpu: &mut Cpu, flags: u64) {
        cpu.flags = flags;
    }
    /// `cli`.
    #[inline]
    pub fn irq_disable(cpu: &mut Cpu) {
        cpu.flags &= !X86_EFLAGS_IF;
    }
    /// `sti`.
    #[inline]
    pub fn irq_enable(cpu: &mut Cpu) {
        cpu.flags |= X86_EFLAGS_IF;
    }
    /// `mov %reg, (%pte)`.
    #[inline]
    pub fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        let n = cpu.ptes.len();
        cpu.ptes[i % n] = pte;
    }
    /// `invlpg`.
    #[inline]
    pub fn flush_tlb_single(cpu: &mut Cpu, _addr: u64) {
        cpu.tlb_flushes += 1;
    }
    /// `wrmsr`.
    #[inline]
    pub fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        cpu.msr[(msr & 3) as usize] = v;
    }
    /// `mov %reg, %cr0`.
    #[inline]
    pub fn write_cr0(cpu: &mut Cpu, v: u64) {
        cpu.cr[0] = v;
    }
    /// `mov %reg, %cr3`.
    #[inline]
    pub fn write_cr3(cpu: &mut Cpu, v: u64) {
        cpu.cr[1] = v;
    }
    /// `mov %reg, %cr4`.
    #[inline]
    pub fn write_cr4(cpu: &mut Cpu, v: u64) {
        cpu.cr[2] = v;
    }
    /// The local APIC timer's initial count.
    #[inline]
    pub fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        cpu.timer = deadline;
    }
}

impl PvBackend for Native {
    const KIND: BackendKind = BackendKind::Native;
    #[inline]
    fn save_fl(cpu: &Cpu) -> u64 {
        native::save_fl(cpu)
    }
    #[inline]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        native::restore_fl(cpu, flags)
    }
    #[inline]
    fn irq_disable(cpu: &mut Cpu) {
        native::irq_disable(cpu)
    }
    #[inline]
    fn irq_enable(cpu: &mut Cpu) {
        native::irq_enable(cpu)
    }
    #[inline]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        native::set_pte(cpu, i, pte)
    }
    #[inline]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        native::flush_tlb_single(cpu, addr)
    }
    #[inline]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        native::write_msr(cpu, msr, v)
    }
    #[inline]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        native::write_cr0(cpu, v)
    }
    #[inline]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        native::write_cr3(cpu, v)
    }
    #[inline]
    fn write_cr4(cpu: &mut Cpu, v: u64) {
        native::write_cr4(cpu, v)
    }
    #[inline]
    fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        native::set_next_event(cpu, deadline)
    }
}

/// VMware's ROM: the interrupt flag and page-table writes in ROM code, the
/// rest exiting to the monitor, which emulates them.
#[derive(Clone, Copy, Debug, Default)]
pub struct VmiRom;

impl VmiRom {
    #[inline]
    fn exit(cpu: &mut Cpu) {
        cpu.hv.exits += 1;
    }
}

impl PvBackend for VmiRom {
    const KIND: BackendKind = BackendKind::Hv(Hypervisor::Vmi);
    #[inline]
    fn save_fl(cpu: &Cpu) -> u64 {
        if cpu.hv.virq_enabled {
            cpu.flags | X86_EFLAGS_IF
        } else {
            cpu.flags & !X86_EFLAGS_IF
        }
    }
    #[inline]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = flags & X86_EFLAGS_IF != 0;
    }
    #[inline]
    fn irq_disable(cpu: &mut Cpu) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = false;
    }
    #[inline]
    fn irq_enable(cpu: &mut Cpu) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = true;
    }
    #[inline]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        cpu.hv.rom_calls += 1;
        let n = cpu.ptes.len();
        cpu.ptes[i % n] = pte;
        cpu.hv.shadow[i % n] = pte & !0xfff | (pte & 0x7);
    }
    #[inline]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        Self::exit(cpu);
        native::flush_tlb_single(cpu, addr);
    }
    #[inline]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        Self::exit(cpu);
        native::write_msr(cpu, msr, v);
    }
    #[inline]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr0(cpu, v);
    }
    #[inline]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr3(cpu, v);
    }
    #[inline]
    fn write_cr4(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr4(cpu, v);
    }
    #[inline]
    fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        Self::exit(cpu);
        native::set_next_event(cpu, deadline);
    }
}

/// A Xen-style guest: the event mask in shared memory, everything else a
/// hypercall (CR4 ignored).
#[derive(Clone, Copy, Debug, Default)]
pub struct XenHcall;

impl XenHcall {
    #[inline]
    fn hypercall(cpu: &mut Cpu) {
        cpu.hv.exits += 1;
    }
}

impl PvBackend for XenHcall {
    const KIND: BackendKind = BackendKind::Hv(Hypervisor::Xen);
    #[inline]
    fn save_fl(cpu: &Cpu) -> u64 {
        u64::from(cpu.hv.virq_enabled) * X86_EFLAGS_IF
    }
    #[inline]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        cpu.hv.virq_enabled = flags & X86_EFLAGS_IF != 0;
    }
    #[inline]
    fn irq_disable(cpu: &mut Cpu) {
        cpu.hv.virq_enabled = false;
    }
    #[inline]
    fn irq_enable(cpu: &mut Cpu) {
        cpu.hv.virq_enabled = true;
    }
    #[inline]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        Self::hypercall(cpu);
        let n = cpu.ptes.len();
        cpu.ptes[i % n] = pte;
    }
    #[inline]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        Self::hypercall(cpu);
        native::flush_tlb_single(cpu, addr);
    }
    #[inline]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        Self::hypercall(cpu);
        native::write_msr(cpu, msr, v);
    }
    #[inline]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        Self::hypercall(cpu);
        native::write_cr0(cpu, v);
    }
    #[inline]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        Self::hypercall(cpu);
        native::write_cr3(cpu, v);
    }
    #[inline]
    fn write_cr4(_cpu: &mut Cpu, _v: u64) {}
    #[inline]
    fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        Self::hypercall(cpu);
        native::set_next_event(cpu, deadline);
    }
}

impl PvOpsTable {
    /// The table bound to a backend kind (the boot-time fill of
    /// `pv_ops` from the ROM's relocations).
    pub fn bind(kind: BackendKind) -> Self {
        match kind {
            BackendKind::Native => Native::table(),
            BackendKind::Hv(Hypervisor::Vmi) => VmiRom::table(),
            BackendKind::Hv(Hypervisor::Xen) => XenHcall::table(),
        }
    }
}

/// How kernel code calls the operations. Three implementations: [`Direct`]
/// (a kernel built without paravirt: the instructions inline), a
/// `&PvOpsTable` (an indirect call through the table per operation) and
/// [`Bound`] (a backend bound once at boot: direct, inlinable calls).
pub trait Ops {
    /// `save_fl`.
    fn save_fl(&self, cpu: &Cpu) -> u64;
    /// `restore_fl`.
    fn restore_fl(&self, cpu: &mut Cpu, flags: u64);
    /// `irq_disable`.
    fn irq_disable(&self, cpu: &mut Cpu);
    /// `irq_enable`.
    fn irq_enable(&self, cpu: &mut Cpu);
    /// `set_pte`.
    fn set_pte(&self, cpu: &mut Cpu, i: usize, pte: u64);
    /// `flush_tlb_single`.
    fn flush_tlb_single(&self, cpu: &mut Cpu, addr: u64);
    /// `write_msr`.
    fn write_msr(&self, cpu: &mut Cpu, msr: u32, v: u64);
    /// `write_cr0`.
    fn write_cr0(&self, cpu: &mut Cpu, v: u64);
    /// `write_cr3`.
    fn write_cr3(&self, cpu: &mut Cpu, v: u64);
    /// `write_cr4`.
    fn write_cr4(&self, cpu: &mut Cpu, v: u64);
    /// `set_next_event`.
    fn set_next_event(&self, cpu: &mut Cpu, deadline: u64);
}

/// A kernel without paravirt: the native instructions, inline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl Ops for Direct {
    #[inline]
    fn save_fl(&self, cpu: &Cpu) -> u64 {
        native::save_fl(cpu)
    }
    #[inline]
    fn restore_fl(&self, cpu: &mut Cpu, flags: u64) {
        native::restore_fl(cpu, flags)
    }
    #[inline]
    fn irq_disable(&self, cpu: &mut Cpu) {
        native::irq_disable(cpu)
    }
    #[inline]
    fn irq_enable(&self, cpu: &mut Cpu) {
        native::irq_enable(cpu)
    }
    #[inline]
    fn set_pte(&self, cpu: &mut Cpu, i: usize, pte: u64) {
        native::set_pte(cpu, i, pte)
    }
    #[inline]
    fn flush_tlb_single(&self, cpu: &mut Cpu, addr: u64) {
        native::flush_tlb_single(cpu, addr)
    }
    #[inline]
    fn write_msr(&self, cpu: &mut Cpu, msr: u32, v: u64) {
        native::write_msr(cpu, msr, v)
    }
    #[inline]
    fn write_cr0(&self, cpu: &mut Cpu, v: u64) {
        native::write_cr0(cpu, v)
    }
    #[inline]
    fn write_cr3(&self, cpu: &mut Cpu, v: u64) {
        native::write_cr3(cpu, v)
    }
    #[inline]
    fn write_cr4(&self, cpu: &mut Cpu, v: u64) {
        native::write_cr4(cpu, v)
    }
    #[inline]
    fn set_next_event(&self, cpu: &mut Cpu, deadline: u64) {
        native::set_next_event(cpu, deadline)
    }
}

impl Ops for &PvOpsTable {
    #[inline]
    fn save_fl(&self, cpu: &Cpu) -> u64 {
        (self.save_fl)(cpu)
    }
    #[inline]
    fn restore_fl(&self, cpu: &mut Cpu, flags: u64) {
        (self.restore_fl)(cpu, flags)
    }
    #[inline]
    fn irq_disable(&self, cpu: &mut Cpu) {
        (self.irq_disable)(cpu)
    }
    #[inline]
    fn irq_enable(&self, cpu: &mut Cpu) {
        (self.irq_enable)(cpu)
    }
    #[inline]
    fn set_pte(&self, cpu: &mut Cpu, i: usize, pte: u64) {
        (self.set_pte)(cpu, i, pte)
    }
    #[inline]
    fn flush_tlb_single(&self, cpu: &mut Cpu, addr: u64) {
        (self.flush_tlb_single)(cpu, addr)
    }
    #[inline]
    fn write_msr(&self, cpu: &mut Cpu, msr: u32, v: u64) {
        (self.write_msr)(cpu, msr, v)
    }
    #[inline]
    fn write_cr0(&self, cpu: &mut Cpu, v: u64) {
        (self.write_cr0)(cpu, v)
    }
    #[inline]
    fn write_cr3(&self, cpu: &mut Cpu, v: u64) {
        (self.write_cr3)(cpu, v)
    }
    #[inline]
    fn write_cr4(&self, cpu: &mut Cpu, v: u64) {
        (self.write_cr4)(cpu, v)
    }
    #[inline]
    fn set_next_event(&self, cpu: &mut Cpu, deadline: u64) {
        (self.set_next_event)(cpu, deadline)
    }
}

/// A backend bound at boot: every call a direct call to `B`'s function.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bound<B>(pub B);

impl<B: PvBackend> Ops for Bound<B> {
    #[inline]
    fn save_fl(&self, cpu: &Cpu) -> u64 {
        B::save_fl(cpu)
    }
    #[inline]
    fn restore_fl(&self, cpu: &mut Cpu, flags: u64) {
        B::restore_fl(cpu, flags)
    }
    #[inline]
    fn irq_disable(&self, cpu: &mut Cpu) {
        B::irq_disable(cpu)
    }
    #[inline]
    fn irq_enable(&self, cpu: &mut Cpu) {
        B::irq_enable(cpu)
    }
    #[inline]
    fn set_pte(&self, cpu: &mut Cpu, i: usize, pte: u64) {
        B::set_pte(cpu, i, pte)
    }
    #[inline]
    fn flush_tlb_single(&self, cpu: &mut Cpu, addr: u64) {
        B::flush_tlb_single(cpu, addr)
    }
    #[inline]
    fn write_msr(&self, cpu: &mut Cpu, msr: u32, v: u64) {
        B::write_msr(cpu, msr, v)
    }
    #[inline]
    fn write_cr0(&self, cpu: &mut Cpu, v: u64) {
        B::write_cr0(cpu, v)
    }
    #[inline]
    fn write_cr3(&self, cpu: &mut Cpu, v: u64) {
        B::write_cr3(cpu, v)
    }
    #[inline]
    fn write_cr4(&self, cpu: &mut Cpu, v: u64) {
        B::write_cr4(cpu, v)
    }
    #[inline]
    fn set_next_event(&self, cpu: &mut Cpu, deadline: u64) {
        B::set_next_event(cpu, deadline)
    }
}

/// Operations [`kernel_paths`] makes per round.
pub const OPS_PER_ROUND: u64 = 16;

/// A round of kernel paths that make paravirtual calls, the host workload
/// of the timing: a page fault (`set_pte_at()` under the page-table lock
/// and the LRU lock with interrupts saved), an unmap (`ptep_clear_flush()`
/// under `spin_lock_irq()`), a context switch (CR3, FS base MSR, CR0's TS
/// bit) and a timer reprogram with interrupts saved. `OPS_PER_ROUND` calls;
/// returns a value depending on every write so nothing is optimised away.
#[inline]
pub fn kernel_paths<O: Ops>(ops: &O, cpu: &mut Cpu, round: u64) -> u64 {
    let i = round as usize;
    // Fault: pte lock with irqs saved, the pte written, the LRU add.
    let f = ops.save_fl(cpu);
    ops.irq_disable(cpu);
    ops.set_pte(cpu, i, (round << 12) | 0x67);
    ops.restore_fl(cpu, f);
    // Unmap under spin_lock_irq.
    ops.irq_disable(cpu);
    ops.set_pte(cpu, i.wrapping_add(7), 0);
    ops.flush_tlb_single(cpu, round << 12);
    ops.irq_enable(cpu);
    // Context switch.
    ops.write_cr3(cpu, 0x1000 + ((round & 7) << 12));
    ops.write_msr(cpu, 0xc000_0100, round);
    ops.write_cr0(cpu, 0x8005_003b);
    ops.write_cr4(cpu, 0x6f0 | (round & 1) << 7);
    // Timer with irqs saved.
    let f = ops.save_fl(cpu);
    ops.irq_disable(cpu);
    ops.set_next_event(cpu, round.wrapping_mul(1_000_003));
    ops.restore_fl(cpu, f);
    cpu.flags ^ cpu.cr[1] ^ cpu.timer ^ cpu.msr[0]
}

/// Runs `rounds` of [`kernel_paths`] with the calls bound at boot: one
/// `match` on the backend found, then code monomorphized for it.
pub fn boot_bound(kind: BackendKind, cpu: &mut Cpu, rounds: u64) -> u64 {
    fn go<B: PvBackend + Default>(cpu: &mut Cpu, rounds: u64) -> u64 {
        let ops = Bound(B::default());
        (0..rounds).fold(0, |acc, r| acc ^ kernel_paths(&ops, cpu, r))
    }
    match kind {
        BackendKind::Native => go::<Native>(cpu, rounds),
        BackendKind::Hv(Hypervisor::Vmi) => go::<VmiRom>(cpu, rounds),
        BackendKind::Hv(Hypervisor::Xen) => go::<XenHcall>(cpu, rounds),
    }
}

/// Runs `rounds` of [`kernel_paths`] through the table: an indirect call
/// per operation.
pub fn through_table(table: &PvOpsTable, cpu: &mut Cpu, rounds: u64) -> u64 {
    (0..rounds).fold(0, |acc, r| acc ^ kernel_paths(&table, cpu, r))
}

/// Runs `rounds` of [`kernel_paths`] with the native instructions inline:
/// a kernel built without paravirt.
pub fn direct(cpu: &mut Cpu, rounds: u64) -> u64 {
    (0..rounds).fold(0, |acc, r| acc ^ kernel_paths(&Direct, cpu, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_takes_the_first_valid_rom_and_says_why_others_were_skipped() {
        let bad_sig = HvRom {
            signature: 0xaa55,
            ..Hypervisor::Xen.rom()
        };
        let old = HvRom {
            api_major: 2,
            ..Hypervisor::Vmi.rom()
        };
        let (found, skipped) = probe_rom(&[bad_sig, old, Hypervisor::Xen.rom()], false);
        assert_eq!(found, Some(Hypervisor::Xen.rom()));
        assert_eq!(skipped.len(), 2);
        assert_eq!(
            skipped[1].to_string(),
            "VMI ROM at slot 1: API 2.1, this kernel speaks 3.x"
        );
        assert_eq!(probe_rom(&[Hypervisor::Vmi.rom()], true).0, None, "novmi");
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

    #[test]
    fn every_binding_form_computes_the_same_state_for_each_backend() {
        for kind in BackendKind::ALL {
            let table = PvOpsTable::bind(kind);
            let mut a = Cpu::new(64);
            let mut b = Cpu::new(64);
            let x = boot_bound(kind, &mut a, 1000);
            let y = through_table(&table, &mut b, 1000);
            assert_eq!(x, y, "{}", kind.name());
            assert_eq!(a.ptes, b.ptes);
            assert_eq!((a.hv.exits, a.hv.rom_calls), (b.hv.exits, b.hv.rom_calls));
        }
        let mut a = Cpu::new(64);
        let mut b = Cpu::new(64);
        assert_eq!(
            direct(&mut a, 100),
            boot_bound(BackendKind::Native, &mut b, 100)
        );
        assert_eq!(a.hv.exits, 0);
        // Per round under VMI: flush, msr, cr0, cr3, cr4, timer exit (6),
        // 6 interrupt-flag writes (save_fl only reads the ROM's page) and 2
        // pte writes are ROM calls (8); under Xen: 2 pte writes, flush, cr3, msr, cr0, timer (7).
        let mut v = Cpu::new(64);
        boot_bound(BackendKind::Hv(Hypervisor::Vmi), &mut v, 10);
        assert_eq!((v.hv.exits, v.hv.rom_calls), (60, 80));
        let mut x = Cpu::new(64);
        boot_bound(BackendKind::Hv(Hypervisor::Xen), &mut x, 10);
        assert_eq!((x.hv.exits, x.hv.rom_calls), (70, 0));
    }
}
