//! Paravirtual operations on the host: the table of privileged
//! operations the VMI page names (seed 004_9e86ca0f77558f15.txt, "The VMI
//! virtualization interface"), and three ways for kernel code to call them,
//! timed for real on this machine: an indirect call through the table
//! (`paravirt_ops` before patching), a backend bound once at boot (the
//! patched form: direct, inlinable calls, here code monomorphized per
//! backend and chosen by one `match`), and the native instructions inline
//! (a kernel built without paravirt). Mirrors
//! arch/x86/include/asm/paravirt_types.h (`struct pv_*_ops`) and
//! arch/x86/kernel/paravirt.c (`paravirt_patch_default()`).
//!
//! The host cannot execute `cli` or `wrmsr` in user space: [`Cpu`] is a
//! stand-in for the registers the operations change, and each backend's
//! functions do what the native instruction, VMware's VMI ROM or a Xen
//! hypercall does to that state, counting exits and ROM calls. The model
//! machine (`klab_model::arch::paravirt`) uses this crate's vocabulary
//! ([`PvOp`], [`Hypervisor`], [`BackendKind`]) and counts the calls its
//! memory-management paths make.
//!
//! # Data structures
//!
//! ```text
//!   PvOp            one variant per operation (the patch-site "type")
//!   Cpu             the registers the operations change
//!   PvOpsTable      pv_ops: one fn pointer per operation
//!   PvBackend       the same operations as static functions, one type per
//!                   backend (Native, VmiRom, XenHcall)
//!   Ops             how kernel code calls them: Direct (no paravirt),
//!                   &PvOpsTable (indirect through the table), Bound<B>
//!                   (bound once at boot)
//! ```
//!
//! # Binding at boot, as the patcher leaves each site
//!
//! `paravirt_patch_default()` turns each call site into one of two forms:
//! natively, `native_patch()` copies short instructions (`cli`, `sti`,
//! `pushf; pop`) into the site, which is then the same code as a kernel
//! without paravirt ([`Bound`]`<`[`Native`]`>`: the native functions
//! inlined); for a hypervisor's ROM, or a native operation too long for the
//! site, a direct call ([`Bound`] over [`VmiRom`], [`XenHcall`] or
//! [`NativeCall`], whose functions are never inlined). [`boot_bound`] binds
//! as the patcher does; [`boot_bound_call`] makes every site a direct call.
//!
//! # On this machine
//!
//! [`probe`] finds the hypervisor in CPUID and the machine in its firmware
//! tables as a booting kernel does; [`platform`] chooses this machine's
//! `x86_platform` operations from that at run time and runs them;
//! [`timing`] times the forms above against a real trap to the hypervisor
//! and a real kernel path (a minor page fault).
#![forbid(unsafe_code)]

pub mod platform;
pub mod probe;
pub mod timing;

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

/// The hypervisors of the model (VMI and a Xen-style interface).
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
}

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

/// The native instructions reached by a direct call: what
/// `paravirt_patch_default()` emits for a native operation that
/// `native_patch()` does not copy into the site.
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeCall;

impl PvBackend for NativeCall {
    const KIND: BackendKind = BackendKind::Native;
    #[inline(never)]
    fn save_fl(cpu: &Cpu) -> u64 {
        native::save_fl(cpu)
    }
    #[inline(never)]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        native::restore_fl(cpu, flags)
    }
    #[inline(never)]
    fn irq_disable(cpu: &mut Cpu) {
        native::irq_disable(cpu)
    }
    #[inline(never)]
    fn irq_enable(cpu: &mut Cpu) {
        native::irq_enable(cpu)
    }
    #[inline(never)]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        native::set_pte(cpu, i, pte)
    }
    #[inline(never)]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        native::flush_tlb_single(cpu, addr)
    }
    #[inline(never)]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        native::write_msr(cpu, msr, v)
    }
    #[inline(never)]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        native::write_cr0(cpu, v)
    }
    #[inline(never)]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        native::write_cr3(cpu, v)
    }
    #[inline(never)]
    fn write_cr4(cpu: &mut Cpu, v: u64) {
        native::write_cr4(cpu, v)
    }
    #[inline(never)]
    fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        native::set_next_event(cpu, deadline)
    }
}

/// VMware's ROM: the interrupt flag and page-table writes in ROM code, the
/// rest exiting to the monitor, which emulates them. ROM code is reached
/// by a call (the patched `CALL_REL`): its functions are never inlined.
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
    #[inline(never)]
    fn save_fl(cpu: &Cpu) -> u64 {
        if cpu.hv.virq_enabled {
            cpu.flags | X86_EFLAGS_IF
        } else {
            cpu.flags & !X86_EFLAGS_IF
        }
    }
    #[inline(never)]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = flags & X86_EFLAGS_IF != 0;
    }
    #[inline(never)]
    fn irq_disable(cpu: &mut Cpu) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = false;
    }
    #[inline(never)]
    fn irq_enable(cpu: &mut Cpu) {
        cpu.hv.rom_calls += 1;
        cpu.hv.virq_enabled = true;
    }
    #[inline(never)]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        cpu.hv.rom_calls += 1;
        let n = cpu.ptes.len();
        cpu.ptes[i % n] = pte;
        cpu.hv.shadow[i % n] = pte & !0xfff | (pte & 0x7);
    }
    #[inline(never)]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        Self::exit(cpu);
        native::flush_tlb_single(cpu, addr);
    }
    #[inline(never)]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        Self::exit(cpu);
        native::write_msr(cpu, msr, v);
    }
    #[inline(never)]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr0(cpu, v);
    }
    #[inline(never)]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr3(cpu, v);
    }
    #[inline(never)]
    fn write_cr4(cpu: &mut Cpu, v: u64) {
        Self::exit(cpu);
        native::write_cr4(cpu, v);
    }
    #[inline(never)]
    fn set_next_event(cpu: &mut Cpu, deadline: u64) {
        Self::exit(cpu);
        native::set_next_event(cpu, deadline);
    }
}

/// A Xen-style guest: the event mask in shared memory, everything else a
/// hypercall (CR4 ignored). Called, never inlined, as [`VmiRom`].
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
    #[inline(never)]
    fn save_fl(cpu: &Cpu) -> u64 {
        u64::from(cpu.hv.virq_enabled) * X86_EFLAGS_IF
    }
    #[inline(never)]
    fn restore_fl(cpu: &mut Cpu, flags: u64) {
        cpu.hv.virq_enabled = flags & X86_EFLAGS_IF != 0;
    }
    #[inline(never)]
    fn irq_disable(cpu: &mut Cpu) {
        cpu.hv.virq_enabled = false;
    }
    #[inline(never)]
    fn irq_enable(cpu: &mut Cpu) {
        cpu.hv.virq_enabled = true;
    }
    #[inline(never)]
    fn set_pte(cpu: &mut Cpu, i: usize, pte: u64) {
        Self::hypercall(cpu);
        let n = cpu.ptes.len();
        cpu.ptes[i % n] = pte;
    }
    #[inline(never)]
    fn flush_tlb_single(cpu: &mut Cpu, addr: u64) {
        Self::hypercall(cpu);
        native::flush_tlb_single(cpu, addr);
    }
    #[inline(never)]
    fn write_msr(cpu: &mut Cpu, msr: u32, v: u64) {
        Self::hypercall(cpu);
        native::write_msr(cpu, msr, v);
    }
    #[inline(never)]
    fn write_cr0(cpu: &mut Cpu, v: u64) {
        Self::hypercall(cpu);
        native::write_cr0(cpu, v);
    }
    #[inline(never)]
    fn write_cr3(cpu: &mut Cpu, v: u64) {
        Self::hypercall(cpu);
        native::write_cr3(cpu, v);
    }
    #[inline(never)]
    fn write_cr4(_cpu: &mut Cpu, _v: u64) {}
    #[inline(never)]
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

fn bound_rounds<B: PvBackend + Default>(cpu: &mut Cpu, rounds: u64) -> u64 {
    let ops = Bound(B::default());
    (0..rounds).fold(0, |acc, r| acc ^ kernel_paths(&ops, cpu, r))
}

/// Runs `rounds` of [`kernel_paths`] with the calls bound at boot as the
/// patcher binds them: one `match` on the backend found, then code
/// monomorphized for it; natively the instructions inline (the same code
/// as [`direct`]), under a hypervisor direct calls into its ROM.
pub fn boot_bound(kind: BackendKind, cpu: &mut Cpu, rounds: u64) -> u64 {
    match kind {
        BackendKind::Native => bound_rounds::<Native>(cpu, rounds),
        BackendKind::Hv(Hypervisor::Vmi) => bound_rounds::<VmiRom>(cpu, rounds),
        BackendKind::Hv(Hypervisor::Xen) => bound_rounds::<XenHcall>(cpu, rounds),
    }
}

/// As [`boot_bound`], but every site a direct call, natively too
/// ([`NativeCall`]).
pub fn boot_bound_call(kind: BackendKind, cpu: &mut Cpu, rounds: u64) -> u64 {
    match kind {
        BackendKind::Native => bound_rounds::<NativeCall>(cpu, rounds),
        hv => boot_bound(hv, cpu, rounds),
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
        let mut c = Cpu::new(64);
        assert_eq!(
            direct(&mut Cpu::new(64), 100),
            boot_bound_call(BackendKind::Native, &mut c, 100)
        );
        assert_eq!(c.ptes, a.ptes);
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
