//! This machine's platform operations, chosen at run time from what
//! [`crate::probe`] found, as `x86_init` / `x86_platform` are filled at
//! boot (seed 001, "Embedded x86": one kernel that sets itself up on any
//! platform through a structure of operations).
//!
//! Mirrors `init_hypervisor_platform()` (arch/x86/kernel/cpu/hypervisor.c):
//! the hypervisor found in CPUID picks a `struct hypervisor_x86` whose
//! `init.init_platform` overrides `x86_platform` fields; KVM's
//! (`kvm_init_platform()`, arch/x86/kernel/kvm.c, and `kvmclock_init()`,
//! arch/x86/kernel/kvmclock.c) sets `x86_platform.calibrate_tsc =
//! kvm_get_tsc_khz` and `get_wallclock = kvm_get_wallclock` and registers
//! the `kvm-clock` clock source; VMware's (`vmware_platform_setup()`,
//! arch/x86/kernel/cpu/vmware.c) takes the TSC rate from hypervisor leaf
//! 0x40000010; Xen HVM registers the `xen` clock source; Hyper-V
//! `hyperv_clocksource_tsc_page`. Without a hypervisor the PC defaults
//! stay (`native_calibrate_tsc()`: CPUID 0x15/0x16 or the PIT;
//! `mach_get_cmos_time()`; `i8042_detect`).
//!
//! Each hook here does what it can of that for real from user space and
//! says what it read: the hypervisor's timing leaf, the CPU's frequency
//! leaves, the kernel's own answer (`/proc/cpuinfo`), the clock sources
//! the kernel registered, the ports it claimed. The model's platforms
//! (Moorestown, a VMI guest), which this machine is not, stay in
//! `klab_model::arch::platform`.

use serde::{Deserialize, Serialize};

use crate::probe::{HostProbe, HvVendor, KVM_FEATURE_CLOCKSOURCE, KVM_FEATURE_CLOCKSOURCE2, Regs};

/// A hook's answer: a value, or why the hook could not give one.
pub type HookResult = Result<String, String>;

/// One `x86_platform` hook: its kernel name and what it does here.
#[derive(Clone, Copy)]
pub struct Hook {
    /// The kernel function the platform installs.
    pub name: &'static str,
    /// Runs it on the probe.
    pub run: fn(&HostProbe) -> HookResult,
}

/// The operations of one platform.
#[derive(Clone, Copy)]
pub struct PlatformOps {
    /// The platform, for tables (`"KVM guest"`).
    pub platform: &'static str,
    /// `x86_platform.calibrate_tsc`.
    pub calibrate_tsc: Hook,
    /// `x86_platform.get_wallclock`.
    pub get_wallclock: Hook,
    /// The paravirtual clock source the platform registers, if any.
    pub paravirt_clock: Option<&'static str>,
    /// `x86_platform.i8042_detect` (or its absence).
    pub i8042_detect: Hook,
}

fn khz(v: u64) -> String {
    format!("{v} kHz")
}

fn native_calibrate_tsc(p: &HostProbe) -> HookResult {
    // CPUID 0x15: TSC = crystal * EBX / EAX; 0x16: base frequency in MHz.
    match p.freq_leaves {
        (Some(Regs { eax, ebx, ecx, .. }), _) if eax != 0 && ebx != 0 && ecx != 0 => Ok(format!(
            "{} (CPUID 0x15: crystal {ecx} Hz x {ebx}/{eax})",
            khz(u64::from(ecx) * u64::from(ebx) / u64::from(eax) / 1000)
        )),
        (_, Some(Regs { eax, .. })) if eax != 0 => Ok(format!(
            "{} (CPUID 0x16 base frequency)",
            khz(u64::from(eax) * 1000)
        )),
        _ => Err("no CPUID frequency leaf; the kernel would calibrate against the PIT, which user space cannot program".into()),
    }
}

fn kvm_get_tsc_khz(p: &HostProbe) -> HookResult {
    // The pvclock page is the kernel's; it reports the result in cpuinfo.
    hv_timing_leaf(p).or_else(|_| {
        p.cpuinfo_khz
            .map(|k| {
                format!(
                    "{} (pvclock's rate, as the kernel reports it in /proc/cpuinfo)",
                    khz(k)
                )
            })
            .ok_or_else(|| "no timing leaf and no cpu MHz in /proc/cpuinfo".into())
    })
}

/// The hypervisor timing leaf (base + 0x10, EAX = TSC kHz), defined by
/// VMware and offered by some KVM hosts.
fn hv_timing_leaf(p: &HostProbe) -> HookResult {
    let h = p.hypervisor.as_ref().ok_or("no hypervisor leaf")?;
    let leaf = h.base + 0x10;
    if h.max_leaf < leaf {
        return Err(format!(
            "hypervisor leaf {leaf:#x} not offered (highest {:#x})",
            h.max_leaf
        ));
    }
    match crate::probe::cpuid(leaf) {
        Some(r) if r.eax != 0 => Ok(format!("{} (CPUID {leaf:#x})", khz(u64::from(r.eax)))),
        _ => Err(format!("CPUID {leaf:#x} gives no TSC rate")),
    }
}

fn realtime_now() -> HookResult {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .map_err(|e| e.to_string())
}

fn mach_get_cmos_time(_: &HostProbe) -> HookResult {
    let p = std::path::Path::new("/sys/class/rtc/rtc0/since_epoch");
    std::fs::read_to_string(p)
        .map(|s| format!("{} s (CMOS RTC, {})", s.trim(), p.display()))
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn hv_get_wallclock(_: &HostProbe) -> HookResult {
    // kvm_get_wallclock() reads the hypervisor's wall clock into the
    // kernel's time of day; user space reads that back.
    realtime_now().map(|s| format!("{s} s (the hypervisor's wall clock, via CLOCK_REALTIME)"))
}

fn default_i8042_detect(p: &HostProbe) -> HookResult {
    if p.i8042_ports {
        Ok("present (the kernel claimed ports 0x60/0x64)".into())
    } else {
        Err("no i8042: ports 0x60/0x64 unclaimed".into())
    }
}

/// The standard PC (`x86_init.c` defaults).
pub const PC: PlatformOps = PlatformOps {
    platform: "standard PC",
    calibrate_tsc: Hook {
        name: "native_calibrate_tsc",
        run: native_calibrate_tsc,
    },
    get_wallclock: Hook {
        name: "mach_get_cmos_time",
        run: mach_get_cmos_time,
    },
    paravirt_clock: None,
    i8042_detect: Hook {
        name: "default_i8042_detect",
        run: default_i8042_detect,
    },
};

/// The ops of a guest under `vendor` (`None`: no override, the PC's).
pub fn guest_ops(vendor: &HvVendor, features: u32) -> Option<PlatformOps> {
    let hv_wallclock = Hook {
        name: "kvm_get_wallclock",
        run: hv_get_wallclock,
    };
    Some(match vendor {
        HvVendor::Kvm => PlatformOps {
            platform: "KVM guest",
            calibrate_tsc: Hook {
                name: "kvm_get_tsc_khz",
                run: kvm_get_tsc_khz,
            },
            get_wallclock: hv_wallclock,
            paravirt_clock: (features & (KVM_FEATURE_CLOCKSOURCE | KVM_FEATURE_CLOCKSOURCE2) != 0)
                .then_some("kvm-clock"),
            i8042_detect: PC.i8042_detect,
        },
        HvVendor::Vmware => PlatformOps {
            platform: "VMware guest",
            calibrate_tsc: Hook {
                name: "vmware_get_tsc_khz",
                run: hv_timing_leaf,
            },
            get_wallclock: PC.get_wallclock,
            paravirt_clock: None,
            i8042_detect: PC.i8042_detect,
        },
        HvVendor::XenHvm => PlatformOps {
            platform: "Xen HVM guest",
            calibrate_tsc: Hook {
                name: "xen_tsc_khz",
                run: kvm_get_tsc_khz,
            },
            get_wallclock: Hook {
                name: "xen_get_wallclock",
                run: hv_get_wallclock,
            },
            paravirt_clock: Some("xen"),
            i8042_detect: PC.i8042_detect,
        },
        HvVendor::HyperV => PlatformOps {
            platform: "Hyper-V guest",
            calibrate_tsc: Hook {
                name: "hv_get_tsc_khz",
                run: kvm_get_tsc_khz,
            },
            get_wallclock: PC.get_wallclock,
            paravirt_clock: Some("hyperv_clocksource_tsc_page"),
            i8042_detect: PC.i8042_detect,
        },
        HvVendor::Acrn | HvVendor::Other(_) => return None,
    })
}

/// `init_hypervisor_platform()`: the PC's operations, overridden by the
/// hypervisor's when CPUID named one the kernel has a platform for.
pub fn select(p: &HostProbe) -> PlatformOps {
    p.hypervisor
        .as_ref()
        .and_then(|h| guest_ops(&h.vendor, h.features))
        .unwrap_or(PC)
}

/// One hook as it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// `x86_platform.calibrate_tsc`, ...
    pub hook: String,
    /// The implementation chosen.
    pub implementation: String,
    /// What it found, or why not.
    pub result: Result<String, String>,
}

/// The setup of this machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSetup {
    /// The platform whose operations were chosen.
    pub platform: String,
    /// The machine, from the firmware.
    pub machine: String,
    /// The hooks, in `setup_arch()` order.
    pub hooks: Vec<HookRun>,
    /// The paravirtual clock source the platform registers, and whether
    /// the running kernel registered it (`None`: the platform has none).
    pub paravirt_clock: Option<(String, bool)>,
}

impl HostSetup {
    /// The chosen platform agrees with the running kernel: its paravirtual
    /// clock source, if it has one, is one the kernel registered.
    pub fn agrees_with_kernel(&self) -> bool {
        self.paravirt_clock
            .as_ref()
            .is_none_or(|(_, registered)| *registered)
    }
}

/// Chooses the operations for `p` and runs them.
pub fn setup(p: &HostProbe) -> HostSetup {
    let ops = select(p);
    let hooks = [
        ("x86_platform.calibrate_tsc", ops.calibrate_tsc),
        ("x86_platform.get_wallclock", ops.get_wallclock),
        ("x86_platform.i8042_detect", ops.i8042_detect),
    ]
    .into_iter()
    .map(|(hook, h)| HookRun {
        hook: hook.into(),
        implementation: h.name.into(),
        result: (h.run)(p),
    })
    .collect();
    HostSetup {
        platform: ops.platform.into(),
        machine: p.machine_name(),
        hooks,
        paravirt_clock: ops
            .paravirt_clock
            .map(|c| (c.to_owned(), p.clocksources.0.iter().any(|x| x == c))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::HvLeaf;

    fn kvm_probe(features: u32, registered: &[&str]) -> HostProbe {
        HostProbe {
            hypervisor_bit: true,
            hypervisor: Some(HvLeaf {
                base: 0x4000_0000,
                max_leaf: 0x4000_0001,
                signature: "KVMKVMKVM".into(),
                vendor: HvVendor::Kvm,
                features,
            }),
            clocksources: (
                registered.iter().map(|s| (*s).to_owned()).collect(),
                "tsc".into(),
            ),
            cpuinfo_khz: Some(2_596_144),
            i8042_ports: true,
            ..HostProbe::default()
        }
    }

    #[test]
    fn kvm_found_in_cpuid_picks_the_kvm_operations() {
        let s = setup(&kvm_probe(0x0100_7efb, &["tsc", "kvm-clock"]));
        assert_eq!(s.platform, "KVM guest");
        let names: Vec<&str> = s.hooks.iter().map(|h| h.implementation.as_str()).collect();
        assert_eq!(
            names,
            [
                "kvm_get_tsc_khz",
                "kvm_get_wallclock",
                "default_i8042_detect"
            ]
        );
        // No timing leaf below 0x40000010: the kernel's pvclock rate.
        assert_eq!(
            s.hooks[0].result,
            Ok("2596144 kHz (pvclock's rate, as the kernel reports it in /proc/cpuinfo)".into())
        );
        assert_eq!(s.paravirt_clock, Some(("kvm-clock".into(), true)));
        assert!(s.agrees_with_kernel());
    }

    #[test]
    fn a_kernel_without_the_platform_clock_disagrees() {
        let s = setup(&kvm_probe(KVM_FEATURE_CLOCKSOURCE2, &["tsc", "hpet"]));
        assert_eq!(s.paravirt_clock, Some(("kvm-clock".into(), false)));
        assert!(!s.agrees_with_kernel());
    }

    #[test]
    fn bare_metal_keeps_the_pc_defaults() {
        let p = HostProbe {
            freq_leaves: (
                Some(Regs {
                    eax: 2,
                    ebx: 200,
                    ecx: 24_000_000,
                    edx: 0,
                }),
                None,
            ),
            ..HostProbe::default()
        };
        let s = setup(&p);
        assert_eq!(s.platform, "standard PC");
        assert_eq!(
            s.hooks[0].result,
            Ok("2400000 kHz (CPUID 0x15: crystal 24000000 Hz x 200/2)".into())
        );
        assert_eq!(
            s.hooks[2].result,
            Err("no i8042: ports 0x60/0x64 unclaimed".into())
        );
        assert_eq!(s.paravirt_clock, None);
        assert!(s.agrees_with_kernel());
        // An unknown signature overrides nothing either.
        assert!(guest_ops(&HvVendor::Other("TCGTCGTCGTCG".into()), 0).is_none());
    }
}
