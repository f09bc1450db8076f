//! Platform setup: the boot-time operations that differ between platforms,
//! as one structure of function pointers chosen at run time.
//!
//! Seed 001_9748f8e50c4ab156.txt, "Embedded x86" (LWN, August 2009):
//! Thomas Gleixner's "global `platform_setup` structure designed to tell
//! the architecture code how to set up the current processor ... function
//! pointers which handle platform-specific tasks like locating BIOS ROMs,
//! setting up interrupt handling, initializing clocks", which "is also
//! runtime-configurable, so a single kernel should be able to run
//! efficiently on any of the supported systems". Merged in 2.6.32 as
//! `struct x86_init_ops x86_init` and `struct x86_platform_ops
//! x86_platform` (arch/x86/include/asm/x86_init.h, arch/x86/kernel/
//! x86_init.c); Moorestown's overrides are arch/x86/kernel/mrst.c
//! (`x86_mrst_early_setup()`), VMI's arch/x86/kernel/vmi_32.c
//! (`vmi_init()`, `vmi_time_init()`), VMware's arch/x86/kernel/cpu/vmware.c
//! (`vmware_platform_setup()`). `docs/REFERENCE.md` §14.
//!
//! # Data structures
//!
//! ```text
//!   Hardware            what the machine has: subarchitecture from the boot
//!                       loader, legacy devices (8259 PIC, 8253 PIT, CMOS RTC,
//!                       i8042), firmware tables (MP/ACPI or SFI), timers
//!                       (HPET, APB), option ROMs, a CPUID hypervisor leaf
//!   X86InitOps          x86_init: resources / mpparse / irqs / timers / pci
//!   X86PlatformOps      x86_platform: calibrate_tsc, get_wallclock,
//!                       i8042_detect
//!   boot(hw)            one kernel: the PC defaults, overridden early by the
//!                       subarchitecture (Moorestown) and by a hypervisor
//!                       found in the ROMs or CPUID (guest), then setup_arch()
//!                       calls through the structure
//! ```
//!
//! # Rules
//!
//! * Defaults are the standard PC's; a platform overrides only the fields
//!   that differ, and an override to a no-op (`x86_init_noop`) means "this
//!   platform has no such thing" (Moorestown has no 8259, no PIT, no i8042).
//! * A hook that touches a device the hardware lacks fails the boot step
//!   (the PIT calibration loop never sees the counter move; the i8042 probe
//!   times out): [`boot_with`] lets a test boot one platform's operations
//!   on another's hardware to show why the structure exists.
//! * The paravirt table is bound during the ROM probe
//!   (`probe_roms()` → the VMI ROM → `vmi_init()`), so a guest's timer and
//!   wallclock hooks come from its hypervisor.

use serde::{Deserialize, Serialize};

use super::paravirt::{BackendKind, HvRom, Hypervisor, Paravirt, probe_rom};

/// The boot loader's `boot_params.hdr.hardware_subarch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subarch {
    /// `X86_SUBARCH_PC`.
    Pc,
    /// `X86_SUBARCH_MRST`: Moorestown.
    Mrst,
}

/// Firmware tables describing CPUs and interrupt routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirmwareTables {
    /// The MP table and ACPI (a PC BIOS).
    MpAcpi,
    /// SFI, the Simple Firmware Interface (Moorestown).
    Sfi,
}

/// What a machine has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// A name for tables.
    pub name: String,
    /// What the boot loader says.
    pub subarch: Subarch,
    /// An 8259A interrupt controller.
    pub pic: bool,
    /// An 8253/8254 programmable interval timer.
    pub pit: bool,
    /// A CMOS real-time clock.
    pub cmos_rtc: bool,
    /// An i8042 keyboard controller.
    pub i8042: bool,
    /// An HPET.
    pub hpet: bool,
    /// Moorestown's APB timers and virtual RTC.
    pub apb_timer: bool,
    /// The firmware's tables.
    pub tables: FirmwareTables,
    /// Option ROMs in the ROM area (0xc0000-0xfffff).
    pub option_roms: Vec<HvRom>,
    /// The CPUID hypervisor leaf (0x40000000), when there is one.
    pub cpuid_hypervisor: Option<Hypervisor>,
    /// The TSC's rate.
    pub tsc_khz: u64,
    /// Wall-clock seconds at power-on.
    pub rtc_seconds: u64,
    /// CPUs.
    pub nr_cpus: u32,
}

impl Hardware {
    /// A standard PC: every legacy device, MP/ACPI tables, an HPET.
    pub fn pc() -> Self {
        Hardware {
            name: "standard PC".into(),
            subarch: Subarch::Pc,
            pic: true,
            pit: true,
            cmos_rtc: true,
            i8042: true,
            hpet: true,
            apb_timer: false,
            tables: FirmwareTables::MpAcpi,
            option_roms: Vec::new(),
            cpuid_hypervisor: None,
            tsc_khz: 2_400_000,
            rtc_seconds: 1_251_158_400,
            nr_cpus: 4,
        }
    }

    /// A Moorestown handset: no PIC, PIT, CMOS RTC or i8042; SFI tables,
    /// APB timers and a virtual RTC.
    pub fn moorestown() -> Self {
        Hardware {
            name: "Moorestown (no legacy devices)".into(),
            subarch: Subarch::Mrst,
            pic: false,
            pit: false,
            cmos_rtc: false,
            i8042: false,
            hpet: false,
            apb_timer: true,
            tables: FirmwareTables::Sfi,
            option_roms: Vec::new(),
            cpuid_hypervisor: None,
            tsc_khz: 1_600_000,
            rtc_seconds: 1_251_158_400,
            nr_cpus: 1,
        }
    }

    /// A virtual machine under `hv`: the emulated PC devices, the
    /// hypervisor's ROM in the option-ROM area (VMI) or its CPUID leaf
    /// (Xen-style).
    pub fn guest(hv: Hypervisor) -> Self {
        let mut h = Hardware::pc();
        h.name = format!("{} guest", hv.name());
        h.hpet = false;
        match hv {
            Hypervisor::Vmi => h.option_roms.push(HvRom::of(hv)),
            Hypervisor::Xen => {
                h.option_roms.push(HvRom::of(hv));
                h.cpuid_hypervisor = Some(hv);
            }
        }
        h.nr_cpus = 2;
        h
    }

    /// The four machines the experiments boot.
    pub fn all() -> Vec<Hardware> {
        vec![
            Hardware::pc(),
            Hardware::moorestown(),
            Hardware::guest(Hypervisor::Vmi),
            Hardware::guest(Hypervisor::Xen),
        ]
    }
}

/// The state `setup_arch()` builds through the hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootState {
    /// Hooks called, in order: `(hook, implementation, result)`.
    pub log: Vec<(String, String, String)>,
    /// Legacy I/O ports touched (PIC, PIT, CMOS, i8042).
    pub legacy_probes: u32,
    /// Failures: a hook that needed a device the machine lacks.
    pub errors: Vec<String>,
    /// The interrupt controller set up.
    pub irq_chip: String,
    /// The clock event device.
    pub timer: String,
    /// The TSC rate found.
    pub tsc_khz: u64,
    /// Wall-clock seconds read at boot.
    pub wallclock: u64,
    /// Where the CPUs were found.
    pub smp_config: String,
    /// The keyboard controller is there.
    pub i8042: bool,
    /// The paravirt table's backend.
    pub paravirt: BackendKind,
}

/// A hook's context: the hardware and what boot has built so far.
pub struct Boot<'a> {
    /// The machine.
    pub hw: &'a Hardware,
    /// What has been built.
    pub st: BootState,
    /// The paravirt table bound by the ROM probe.
    pub pv: Paravirt,
}

impl Boot<'_> {
    fn log(&mut self, hook: &str, imp: &str, result: impl Into<String>) {
        self.st
            .log
            .push((hook.to_owned(), imp.to_owned(), result.into()));
    }

    fn fail(&mut self, hook: &str, imp: &str, why: String) {
        self.log(hook, imp, format!("FAILED: {why}"));
        self.st.errors.push(format!("{hook} ({imp}): {why}"));
    }
}

/// A boot hook.
pub type Hook = fn(&mut Boot<'_>);
/// A hook returning a value or why it could not.
pub type Probe = fn(&mut Boot<'_>) -> Result<u64, String>;

/// `x86_init.resources`.
#[derive(Clone, Copy)]
pub struct Resources {
    /// `probe_roms`: scan the option-ROM area.
    pub probe_roms: (&'static str, Hook),
    /// `memory_setup`: the memory map.
    pub memory_setup: (&'static str, Hook),
}

/// `x86_init.mpparse`.
#[derive(Clone, Copy)]
pub struct MpParse {
    /// `find_smp_config`.
    pub find_smp_config: (&'static str, Hook),
}

/// `x86_init.irqs`.
#[derive(Clone, Copy)]
pub struct Irqs {
    /// `pre_vector_init`: the legacy interrupt controller.
    pub pre_vector_init: (&'static str, Hook),
    /// `intr_init`.
    pub intr_init: (&'static str, Hook),
}

/// `x86_init.timers`.
#[derive(Clone, Copy)]
pub struct Timers {
    /// `timer_init`: the clock event device.
    pub timer_init: (&'static str, Hook),
    /// `wallclock_init`.
    pub wallclock_init: (&'static str, Hook),
}

/// `x86_init.pci`.
#[derive(Clone, Copy)]
pub struct Pci {
    /// `init`: PCI configuration access.
    pub init: (&'static str, Hook),
}

/// `struct x86_init_ops`.
#[derive(Clone, Copy)]
pub struct X86InitOps {
    /// Platform name, for tables.
    pub platform: &'static str,
    /// Resources.
    pub resources: Resources,
    /// MP parsing.
    pub mpparse: MpParse,
    /// Interrupts.
    pub irqs: Irqs,
    /// Timers.
    pub timers: Timers,
    /// PCI.
    pub pci: Pci,
}

/// `struct x86_platform_ops`.
#[derive(Clone, Copy)]
pub struct X86PlatformOps {
    /// `calibrate_tsc`.
    pub calibrate_tsc: (&'static str, Probe),
    /// `get_wallclock`.
    pub get_wallclock: (&'static str, Probe),
    /// `i8042_detect`.
    pub i8042_detect: (&'static str, fn(&mut Boot<'_>) -> bool),
}

fn noop(_: &mut Boot<'_>) {}

// --- the standard PC (arch/x86/kernel/x86_init.c defaults) ---

fn probe_roms(b: &mut Boot<'_>) {
    let (rom, skipped) = probe_rom(&b.hw.option_roms, false);
    for s in skipped {
        b.log("resources.probe_roms", "probe_roms", s.to_string());
    }
    match rom {
        Some(r) => {
            b.pv = Paravirt::bind(BackendKind::Hv(r.hypervisor));
            b.st.paravirt = b.pv.backend();
            b.log(
                "resources.probe_roms",
                "probe_roms",
                format!(
                    "{} ROM, API {}.{}: paravirt ops bound",
                    r.hypervisor.name(),
                    r.api_major,
                    r.api_minor
                ),
            );
        }
        None => b.log(
            "resources.probe_roms",
            "probe_roms",
            format!(
                "{} option ROMs, none a hypervisor's",
                b.hw.option_roms.len()
            ),
        ),
    }
}

fn e820_memory(b: &mut Boot<'_>) {
    b.log(
        "resources.memory_setup",
        "default_machine_specific_memory_setup",
        "e820 map",
    );
}

fn mp_find(b: &mut Boot<'_>) {
    if b.hw.tables == FirmwareTables::MpAcpi {
        b.st.smp_config = format!("MP table: {} CPUs", b.hw.nr_cpus);
        b.log(
            "mpparse.find_smp_config",
            "default_find_smp_config",
            b.st.smp_config.clone(),
        );
    } else {
        let why = "no MP floating pointer in the BIOS areas".to_owned();
        b.fail("mpparse.find_smp_config", "default_find_smp_config", why);
        b.st.smp_config = "1 CPU (no tables)".into();
    }
}

fn init_isa_irqs(b: &mut Boot<'_>) {
    b.st.legacy_probes += 1;
    if b.hw.pic {
        b.st.irq_chip = "8259A + IO-APIC".into();
        b.log("irqs.pre_vector_init", "init_ISA_irqs", "8259A PIC");
    } else {
        b.fail(
            "irqs.pre_vector_init",
            "init_ISA_irqs",
            "no 8259A at ports 0x20/0xa0".into(),
        );
    }
}

fn native_intr_init(b: &mut Boot<'_>) {
    b.log("irqs.intr_init", "native_init_IRQ", "vectors set");
}

fn hpet_time_init(b: &mut Boot<'_>) {
    if b.hw.hpet {
        b.st.timer = "hpet".into();
        b.log("timers.timer_init", "hpet_time_init", "HPET clock events");
    } else if b.hw.pit {
        b.st.legacy_probes += 1;
        b.st.timer = "pit".into();
        b.log(
            "timers.timer_init",
            "hpet_time_init",
            "no HPET: PIT clock events",
        );
    } else {
        b.fail(
            "timers.timer_init",
            "hpet_time_init",
            "no HPET and no PIT: no clock event device".into(),
        );
    }
}

fn native_calibrate_tsc(b: &mut Boot<'_>) -> Result<u64, String> {
    b.st.legacy_probes += 1;
    if b.hw.pit {
        Ok(b.hw.tsc_khz)
    } else {
        Err("PIT channel 2 never counts down: calibration loop times out".into())
    }
}

fn mach_get_cmos_time(b: &mut Boot<'_>) -> Result<u64, String> {
    b.st.legacy_probes += 1;
    if b.hw.cmos_rtc {
        Ok(b.hw.rtc_seconds)
    } else {
        Err("CMOS at port 0x70 reads 0xff: no valid time".into())
    }
}

fn default_i8042_detect(b: &mut Boot<'_>) -> bool {
    b.st.legacy_probes += 1;
    b.hw.i8042
}

fn pci_direct_init(b: &mut Boot<'_>) {
    b.log(
        "pci.init",
        "x86_default_pci_init",
        "type 1 configuration access",
    );
}

/// The standard PC's operations (`x86_init`'s defaults).
pub fn pc_init_ops() -> X86InitOps {
    X86InitOps {
        platform: "standard PC",
        resources: Resources {
            probe_roms: ("probe_roms", probe_roms),
            memory_setup: ("default_machine_specific_memory_setup", e820_memory),
        },
        mpparse: MpParse {
            find_smp_config: ("default_find_smp_config", mp_find),
        },
        irqs: Irqs {
            pre_vector_init: ("init_ISA_irqs", init_isa_irqs),
            intr_init: ("native_init_IRQ", native_intr_init),
        },
        timers: Timers {
            timer_init: ("hpet_time_init", hpet_time_init),
            wallclock_init: ("x86_init_noop", noop),
        },
        pci: Pci {
            init: ("x86_default_pci_init", pci_direct_init),
        },
    }
}

/// The standard PC's runtime operations (`x86_platform`'s defaults).
pub fn pc_platform_ops() -> X86PlatformOps {
    X86PlatformOps {
        calibrate_tsc: ("native_calibrate_tsc", native_calibrate_tsc),
        get_wallclock: ("mach_get_cmos_time", mach_get_cmos_time),
        i8042_detect: ("default_i8042_detect", default_i8042_detect),
    }
}

// --- Moorestown (arch/x86/kernel/mrst.c) ---

fn sfi_find(b: &mut Boot<'_>) {
    if b.hw.tables == FirmwareTables::Sfi {
        b.st.smp_config = format!("SFI CPUS table: {} CPUs", b.hw.nr_cpus);
        b.log(
            "mpparse.find_smp_config",
            "sfi_find_smp_config",
            b.st.smp_config.clone(),
        );
    } else {
        b.fail(
            "mpparse.find_smp_config",
            "sfi_find_smp_config",
            "no SFI tables".into(),
        );
    }
}

fn apbt_time_init(b: &mut Boot<'_>) {
    if b.hw.apb_timer {
        b.st.timer = "apbt".into();
        b.log(
            "timers.timer_init",
            "mrst_time_init",
            "APB timer clock events",
        );
    } else {
        b.fail("timers.timer_init", "mrst_time_init", "no APB timer".into());
    }
}

fn mrst_calibrate_tsc(b: &mut Boot<'_>) -> Result<u64, String> {
    if b.hw.apb_timer {
        Ok(b.hw.tsc_khz)
    } else {
        Err("no APB timer to calibrate against".into())
    }
}

fn vrtc_get_time(b: &mut Boot<'_>) -> Result<u64, String> {
    if b.hw.apb_timer {
        Ok(b.hw.rtc_seconds)
    } else {
        Err("no virtual RTC".into())
    }
}

fn no_i8042(_: &mut Boot<'_>) -> bool {
    false
}

fn mrst_irqs(b: &mut Boot<'_>) {
    b.st.irq_chip = "IO-APIC only".into();
    b.log(
        "irqs.pre_vector_init",
        "x86_init_noop",
        "no 8259A: IO-APIC only",
    );
}

fn mrst_pci(b: &mut Boot<'_>) {
    b.log("pci.init", "pci_mrst_init", "PCI shim for fixed devices");
}

/// `x86_mrst_early_setup()`: the fields Moorestown overrides.
pub fn mrst_override(init: &mut X86InitOps, platform: &mut X86PlatformOps) {
    init.platform = "Moorestown";
    init.resources.probe_roms = ("x86_init_noop", noop);
    init.mpparse.find_smp_config = ("sfi_find_smp_config", sfi_find);
    init.irqs.pre_vector_init = ("x86_init_noop", mrst_irqs);
    init.timers.timer_init = ("mrst_time_init", apbt_time_init);
    init.pci.init = ("pci_mrst_init", mrst_pci);
    platform.calibrate_tsc = ("mrst_calibrate_tsc", mrst_calibrate_tsc);
    platform.get_wallclock = ("vrtc_get_time", vrtc_get_time);
    platform.i8042_detect = ("mrst_i8042_detect", no_i8042);
}

// --- guests: the hypervisor's timer, clock and TSC rate ---

fn hv_time_init(b: &mut Boot<'_>) {
    let hv = b.pv.backend().name();
    b.st.timer = format!("{hv} paravirt clock events");
    b.pv.program_timer();
    b.log("timers.timer_init", "hv_time_init", b.st.timer.clone());
}

fn hv_calibrate_tsc(b: &mut Boot<'_>) -> Result<u64, String> {
    Ok(b.hw.tsc_khz)
}

fn hv_get_wallclock(b: &mut Boot<'_>) -> Result<u64, String> {
    Ok(b.hw.rtc_seconds)
}

/// `vmi_init()` / `vmware_platform_setup()` / the Xen-style guest setup:
/// the hypervisor supplies the clock, the TSC rate and the time of day.
pub fn guest_override(init: &mut X86InitOps, platform: &mut X86PlatformOps) {
    init.platform = "virtualised guest";
    init.timers.timer_init = ("hv_time_init", hv_time_init);
    platform.calibrate_tsc = ("hv_get_tsc_khz", hv_calibrate_tsc);
    platform.get_wallclock = ("hv_get_wallclock", hv_get_wallclock);
}

/// Which operations a boot uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selection {
    /// Chosen at run time from the hardware (the one kernel of x86_init).
    Detect,
    /// The PC's operations whatever the hardware (a kernel built for the PC
    /// only, before x86_init).
    PcOnly,
}

/// A finished boot.
pub struct Booted {
    /// The platform whose operations ran.
    pub platform: &'static str,
    /// What boot built.
    pub state: BootState,
    /// The paravirt table.
    pub pv: Paravirt,
}

impl Booted {
    /// True when no hook failed.
    pub fn ok(&self) -> bool {
        self.state.errors.is_empty()
    }
}

/// Boots the one model kernel on `hw`, choosing operations at run time.
pub fn boot(hw: &Hardware) -> Booted {
    boot_with(hw, Selection::Detect)
}

/// Boots on `hw` with the operations `sel` picks: `setup_arch()`'s
/// sequence through `x86_init` and `x86_platform`.
pub fn boot_with(hw: &Hardware, sel: Selection) -> Booted {
    let mut init = pc_init_ops();
    let mut platform = pc_platform_ops();
    let mut b = Boot {
        hw,
        st: BootState::default(),
        pv: Paravirt::default(),
    };
    if sel == Selection::Detect {
        // x86_early_init_platform_quirks(): the boot loader's word first.
        if hw.subarch == Subarch::Mrst {
            mrst_override(&mut init, &mut platform);
        }
    }
    // setup_arch()
    (init.resources.probe_roms.1)(&mut b);
    if sel == Selection::Detect {
        // init_hypervisor_platform(): a ROM bound the table, or CPUID names
        // a hypervisor.
        if let Some(hv) = hw.cpuid_hypervisor
            && b.pv.backend() == BackendKind::Native
        {
            b.pv = Paravirt::bind(BackendKind::Hv(hv));
            b.st.paravirt = b.pv.backend();
        }
        if b.pv.backend() != BackendKind::Native {
            guest_override(&mut init, &mut platform);
        }
    }
    (init.resources.memory_setup.1)(&mut b);
    (init.mpparse.find_smp_config.1)(&mut b);
    // Early CPU setup writes CR4 (PGE, OSFXSR) on every CPU.
    for _ in 0..hw.nr_cpus {
        b.pv.write_cr4();
    }
    let (name, f) = platform.calibrate_tsc;
    match f(&mut b) {
        Ok(khz) => {
            b.st.tsc_khz = khz;
            b.log("x86_platform.calibrate_tsc", name, format!("{khz} kHz"));
        }
        Err(e) => b.fail("x86_platform.calibrate_tsc", name, e),
    }
    (init.irqs.pre_vector_init.1)(&mut b);
    (init.irqs.intr_init.1)(&mut b);
    (init.timers.timer_init.1)(&mut b);
    (init.timers.wallclock_init.1)(&mut b);
    let (name, f) = platform.get_wallclock;
    match f(&mut b) {
        Ok(s) => {
            b.st.wallclock = s;
            b.log("x86_platform.get_wallclock", name, format!("{s} s"));
        }
        Err(e) => b.fail("x86_platform.get_wallclock", name, e),
    }
    (init.pci.init.1)(&mut b);
    let (name, f) = platform.i8042_detect;
    b.st.i8042 = f(&mut b);
    if b.st.i8042 || name != "default_i8042_detect" {
        b.log(
            "x86_platform.i8042_detect",
            name,
            if b.st.i8042 { "present" } else { "skipped" },
        );
    } else {
        b.fail(
            "x86_platform.i8042_detect",
            name,
            "no controller at port 0x64: probe timed out".into(),
        );
    }
    Booted {
        platform: init.platform,
        state: b.st,
        pv: b.pv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::paravirt::PvOp;

    #[test]
    fn one_kernel_boots_on_every_platform_chosen_at_run_time() {
        let pc = boot(&Hardware::pc());
        assert!(pc.ok(), "{:?}", pc.state.errors);
        assert_eq!(pc.platform, "standard PC");
        assert_eq!(
            (pc.state.timer.as_str(), pc.state.paravirt),
            ("hpet", BackendKind::Native)
        );
        // PIC, PIT calibration, CMOS, i8042.
        assert_eq!(pc.state.legacy_probes, 4);

        let mrst = boot(&Hardware::moorestown());
        assert!(mrst.ok(), "{:?}", mrst.state.errors);
        assert_eq!(mrst.platform, "Moorestown");
        assert_eq!(mrst.state.timer, "apbt");
        assert_eq!(mrst.state.legacy_probes, 0, "no legacy port touched");
        assert!(!mrst.state.i8042);

        for hv in Hypervisor::ALL {
            let g = boot(&Hardware::guest(hv));
            assert!(g.ok(), "{:?}", g.state.errors);
            assert_eq!(g.platform, "virtualised guest");
            assert_eq!(g.state.paravirt, BackendKind::Hv(hv));
            // The timer was programmed through the hypervisor, CR4 written
            // once per CPU.
            assert_eq!(g.pv.stats().of(PvOp::TimerSetNext), 1);
            assert_eq!(g.pv.stats().of(PvOp::WriteCr4), 2);
        }
    }

    #[test]
    fn the_pc_operations_fail_on_moorestown_hardware() {
        let b = boot_with(&Hardware::moorestown(), Selection::PcOnly);
        assert!(!b.ok());
        let hooks: Vec<&str> = b
            .state
            .errors
            .iter()
            .map(|e| e.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(
            hooks,
            [
                "mpparse.find_smp_config",
                "x86_platform.calibrate_tsc",
                "irqs.pre_vector_init",
                "timers.timer_init",
                "x86_platform.get_wallclock",
                "x86_platform.i8042_detect"
            ]
        );
    }
}
