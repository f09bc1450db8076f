//! What this machine is, found the way a booting kernel finds it: the
//! hypervisor from CPUID, the machine from its firmware tables.
//!
//! Mirrors arch/x86/kernel/cpu/hypervisor.c (`init_hypervisor_platform()`,
//! `detect_hypervisor_vendor()`) and `hypervisor_cpuid_base()`
//! (arch/x86/include/asm/processor.h, 2.6.30 and later): only when
//! CPUID.1:ECX bit 31 (`X86_FEATURE_HYPERVISOR`) says a hypervisor is
//! there, the leaves 0x40000000, 0x40000100, ... 0x4000ff00 are read, and
//! the first whose EBX:ECX:EDX signature names a known hypervisor wins
//! (`"KVMKVMKVM\0\0\0"` for KVM, `"XenVMMXenVMM"` for Xen HVM,
//! `"VMwareVMware"`, `"Microsoft Hv"`). EAX of that leaf is the highest
//! hypervisor leaf; EAX of the next (base + 1) holds the hypervisor's
//! feature bits (for KVM, `KVM_FEATURE_CLOCKSOURCE` is bit 0 and
//! `KVM_FEATURE_CLOCKSOURCE2` bit 3: the paravirtual clock). On bare metal
//! the bit is clear and nothing is read.
//!
//! The machine itself: DMI (`/sys/class/dmi/id`, what `dmi_scan_machine()`
//! found in the SMBIOS tables), the ACPI tables' headers
//! (`/sys/firmware/acpi/tables`: OEM ID, OEM table ID and creator ID name
//! the firmware, e.g. `FIRECK`/`FCAT` for Firecracker, `BOCHS`/`BXPC` for
//! QEMU) and a device tree's `model` and `compatible` where there is one.
//! Missing sources are noted, not errors: DMI is absent in many small VMs.
//!
//! Parsing is at the edge: [`parse_acpi_header`] takes the bytes of a table
//! and returns a checked header or an error naming the file and offset;
//! [`HvVendor::from_signature`] maps a signature to a vendor.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The hypervisor CPUID range: `0x40000000` to `0x4000ff00` in steps of
/// `0x100` (`hypervisor_cpuid_base()`).
pub const HV_CPUID_FIRST: u32 = 0x4000_0000;
/// One past the last base scanned.
pub const HV_CPUID_END: u32 = 0x4001_0000;
/// The step between bases.
pub const HV_CPUID_STEP: u32 = 0x100;

/// `KVM_FEATURE_CLOCKSOURCE` (bit 0 of leaf base + 1 EAX): kvmclock, old MSRs.
pub const KVM_FEATURE_CLOCKSOURCE: u32 = 1 << 0;
/// `KVM_FEATURE_CLOCKSOURCE2` (bit 3): kvmclock, new MSRs.
pub const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;

/// One CPUID leaf's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// Executes CPUID for `leaf` (sub-leaf 0). `None` where the instruction
/// does not exist (not x86-64).
///
/// Under a hypervisor every CPUID exits to it (VT-x and SVM intercept
/// CPUID unconditionally under KVM), which is what [`crate::timing`]
/// times.
#[inline]
pub fn cpuid(leaf: u32) -> Option<Regs> {
    #[cfg(target_arch = "x86_64")]
    {
        // A safe function since Rust made the CPUID intrinsics safe: every
        // x86-64 CPU has the instruction.
        let r = core::arch::x86_64::__cpuid(leaf);
        Some(Regs {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = leaf;
        None
    }
}

/// The 12 signature bytes of a vendor leaf: EBX, ECX, EDX, little-endian
/// (as the kernel `memcpy`s them).
pub fn signature_bytes(r: Regs) -> [u8; 12] {
    let mut s = [0u8; 12];
    s[..4].copy_from_slice(&r.ebx.to_le_bytes());
    s[4..8].copy_from_slice(&r.ecx.to_le_bytes());
    s[8..].copy_from_slice(&r.edx.to_le_bytes());
    s
}

/// A signature shown as text: printable ASCII kept, NULs dropped at the
/// end, anything else as `\xNN`.
pub fn show_signature(s: &[u8]) -> String {
    let end = s.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    s[..end]
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// The hypervisors `detect_hypervisor_vendor()` knows, by signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HvVendor {
    /// `"KVMKVMKVM\0\0\0"` (arch/x86/kernel/kvm.c, `kvm_detect()`).
    Kvm,
    /// `"XenVMMXenVMM"` (arch/x86/xen/enlighten_hvm.c).
    XenHvm,
    /// `"VMwareVMware"` (arch/x86/kernel/cpu/vmware.c).
    Vmware,
    /// `"Microsoft Hv"` (arch/x86/kernel/cpu/mshyperv.c).
    HyperV,
    /// `"ACRNACRNACRN"` (arch/x86/kernel/cpu/acrn.c).
    Acrn,
    /// A signature the kernel has no platform for (`"TCGTCGTCGTCG"`, QEMU
    /// without KVM; `"bhyve bhyve "`; ...), kept as text.
    Other(String),
}

impl HvVendor {
    /// The vendor a signature names.
    pub fn from_signature(sig: &[u8; 12]) -> HvVendor {
        match sig {
            b"KVMKVMKVM\0\0\0" => HvVendor::Kvm,
            b"XenVMMXenVMM" => HvVendor::XenHvm,
            b"VMwareVMware" => HvVendor::Vmware,
            b"Microsoft Hv" => HvVendor::HyperV,
            b"ACRNACRNACRN" => HvVendor::Acrn,
            other => HvVendor::Other(show_signature(other)),
        }
    }

    /// A short name.
    pub fn name(&self) -> String {
        match self {
            HvVendor::Kvm => "KVM".into(),
            HvVendor::XenHvm => "Xen HVM".into(),
            HvVendor::Vmware => "VMware".into(),
            HvVendor::HyperV => "Hyper-V".into(),
            HvVendor::Acrn => "ACRN".into(),
            HvVendor::Other(s) => format!("unknown ({s})"),
        }
    }
}

/// The hypervisor leaf found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HvLeaf {
    /// The base leaf (0x40000000 unless a hypervisor moved it, as Hyper-V
    /// emulation under KVM does to 0x40000100).
    pub base: u32,
    /// EAX of the base leaf: the highest hypervisor leaf.
    pub max_leaf: u32,
    /// The signature as text (`KVMKVMKVM`).
    pub signature: String,
    /// Who it is.
    pub vendor: HvVendor,
    /// EAX of base + 1: the feature bits (0 when `max_leaf < base + 1`).
    pub features: u32,
}

/// Scans the hypervisor range with `cpuid` (a parameter, so tests can hand
/// it a table of leaves) as `hypervisor_cpuid_base()` does: the first base
/// whose signature is a known vendor's; failing that, the first base with
/// any non-zero signature, as an unknown vendor. `None` unless
/// CPUID.1:ECX[31] is set.
pub fn find_hypervisor(cpuid: impl Fn(u32) -> Option<Regs>) -> Option<HvLeaf> {
    let leaf1 = cpuid(1)?;
    if leaf1.ecx & (1 << 31) == 0 {
        return None;
    }
    let mut unknown = None;
    for base in (HV_CPUID_FIRST..HV_CPUID_END).step_by(HV_CPUID_STEP as usize) {
        let r = cpuid(base)?;
        let sig = signature_bytes(r);
        if sig == [0; 12] {
            continue;
        }
        let vendor = HvVendor::from_signature(&sig);
        let features = if r.eax > base {
            cpuid(base + 1).map_or(0, |f| f.eax)
        } else {
            0
        };
        let leaf = HvLeaf {
            base,
            max_leaf: r.eax,
            signature: show_signature(&sig),
            vendor,
            features,
        };
        if !matches!(leaf.vendor, HvVendor::Other(_)) {
            return Some(leaf);
        }
        unknown.get_or_insert(leaf);
    }
    unknown
}

/// What a booting kernel reads from DMI (`/sys/class/dmi/id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dmi {
    /// `sys_vendor`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `bios_vendor`.
    pub bios_vendor: String,
    /// `bios_version`.
    pub bios_version: String,
}

/// The header every ACPI table starts with (ACPI 6.x §5.2.6, 36 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiHeader {
    /// The table's signature (`APIC`, `FACP`, ...).
    pub signature: String,
    /// Length of the whole table in bytes.
    pub length: u32,
    /// Revision.
    pub revision: u8,
    /// OEM ID (6 bytes, trailing spaces trimmed).
    pub oem_id: String,
    /// OEM table ID (8 bytes).
    pub oem_table_id: String,
    /// OEM revision.
    pub oem_revision: u32,
    /// ASL compiler vendor ID (4 bytes).
    pub creator_id: String,
}

/// Size of [`AcpiHeader`] on disk.
pub const ACPI_HEADER_LEN: usize = 36;

/// A firmware table that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// Fewer bytes than a header.
    #[error(
        "{file}: offset {offset}: truncated ACPI table header, expected {ACPI_HEADER_LEN} bytes"
    )]
    Truncated {
        /// The table file.
        file: PathBuf,
        /// Bytes there were.
        offset: usize,
    },
    /// A field that must be printable ASCII is not.
    #[error("{file}: offset {offset}: {field} is not printable ASCII ({bytes:02x?})")]
    NotAscii {
        /// The table file.
        file: PathBuf,
        /// Where the field starts.
        offset: usize,
        /// Which field.
        field: &'static str,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// The length field is smaller than the header.
    #[error(
        "{file}: offset 4: table length {length} is shorter than its {ACPI_HEADER_LEN}-byte header"
    )]
    BadLength {
        /// The table file.
        file: PathBuf,
        /// The length found.
        length: u32,
    },
}

fn ascii_field(
    b: &[u8],
    at: usize,
    len: usize,
    field: &'static str,
    file: &Path,
) -> Result<String, ProbeError> {
    let raw = &b[at..at + len];
    // Firmware pads with spaces or NULs.
    let end = raw
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    let s = &raw[..end];
    if s.iter().any(|&c| !(0x20..0x7f).contains(&c)) {
        return Err(ProbeError::NotAscii {
            file: file.to_owned(),
            offset: at,
            field,
            bytes: raw.to_vec(),
        });
    }
    Ok(String::from_utf8_lossy(s).into_owned())
}

/// Parses the header of an ACPI table (`bytes` from its start; `file`
/// names it in errors).
///
/// # Errors
/// Fewer than 36 bytes, a length field below 36, or an identifier field
/// that is not printable ASCII.
pub fn parse_acpi_header(bytes: &[u8], file: &Path) -> Result<AcpiHeader, ProbeError> {
    if bytes.len() < ACPI_HEADER_LEN {
        return Err(ProbeError::Truncated {
            file: file.to_owned(),
            offset: bytes.len(),
        });
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let length = u32_at(4);
    if (length as usize) < ACPI_HEADER_LEN {
        return Err(ProbeError::BadLength {
            file: file.to_owned(),
            length,
        });
    }
    Ok(AcpiHeader {
        signature: ascii_field(bytes, 0, 4, "signature", file)?,
        length,
        revision: bytes[8],
        oem_id: ascii_field(bytes, 10, 6, "OEM ID", file)?,
        oem_table_id: ascii_field(bytes, 16, 8, "OEM table ID", file)?,
        oem_revision: u32_at(24),
        creator_id: ascii_field(bytes, 28, 4, "creator ID", file)?,
    })
}

/// A device tree's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTree {
    /// `/model`.
    pub model: String,
    /// `/compatible`, its NUL-separated strings.
    pub compatible: Vec<String>,
}

/// Everything found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProbe {
    /// CPUID leaf 0's vendor string (`GenuineIntel`, `AuthenticAMD`).
    pub cpu_vendor: String,
    /// CPUID.1:ECX[31], `X86_FEATURE_HYPERVISOR`.
    pub hypervisor_bit: bool,
    /// The hypervisor leaf, when the bit is set and a signature was found.
    pub hypervisor: Option<HvLeaf>,
    /// CPUID leaves 0x15 and 0x16 (TSC and core frequency), when the CPU
    /// reports them.
    pub freq_leaves: (Option<Regs>, Option<Regs>),
    /// DMI, when the kernel found SMBIOS tables.
    pub dmi: Option<Dmi>,
    /// ACPI table headers, by signature order.
    pub acpi: Vec<AcpiHeader>,
    /// A device tree, where the firmware passed one.
    pub devicetree: Option<DeviceTree>,
    /// The clock sources the running kernel registered, and its current one.
    pub clocksources: (Vec<String>, String),
    /// Whether the kernel claimed the i8042 ports (`/proc/ioports`
    /// `keyboard` at 0060).
    pub i8042_ports: bool,
    /// The kernel's TSC rate as it reports it (`/proc/cpuinfo` `cpu MHz`
    /// of CPU 0, in kHz).
    pub cpuinfo_khz: Option<u64>,
    /// What could not be read, and why.
    pub notes: Vec<String>,
}

impl HostProbe {
    /// The machine's name from the firmware: DMI's vendor and product,
    /// else the ACPI OEM of the FADT (or of the first table), else the
    /// device tree's model.
    pub fn machine_name(&self) -> String {
        if let Some(d) = &self.dmi
            && !(d.sys_vendor.is_empty() && d.product_name.is_empty())
        {
            return format!("{} {}", d.sys_vendor, d.product_name)
                .trim()
                .to_owned();
        }
        let fadt = self
            .acpi
            .iter()
            .find(|t| t.signature == "FACP")
            .or(self.acpi.first());
        if let Some(t) = fadt {
            return format!(
                "ACPI OEM {} {} (creator {})",
                t.oem_id, t.oem_table_id, t.creator_id
            );
        }
        if let Some(dt) = &self.devicetree {
            return dt.model.clone();
        }
        "unknown (no DMI, ACPI or device tree)".into()
    }
}

/// Where the probe reads the kernel's files: `/sys` and `/proc` normally,
/// a directory of fixtures in tests.
#[derive(Clone, Debug)]
pub struct Roots {
    /// Stands for `/sys`.
    pub sys: PathBuf,
    /// Stands for `/proc`.
    pub proc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sys: PathBuf::from("/sys"),
            proc: PathBuf::from("/proc"),
        }
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// Reads DMI, ACPI headers, the device tree, clock sources, i8042 ports
/// and the kernel's TSC rate under `roots`. Missing files become notes;
/// a malformed ACPI table is an error.
///
/// # Errors
/// An ACPI table whose header does not parse ([`parse_acpi_header`]).
pub fn probe_firmware(roots: &Roots, p: &mut HostProbe) -> Result<(), ProbeError> {
    let dmi = roots.sys.join("class/dmi/id");
    if dmi.is_dir() {
        let f = |n: &str| read_trimmed(&dmi.join(n)).unwrap_or_default();
        p.dmi = Some(Dmi {
            sys_vendor: f("sys_vendor"),
            product_name: f("product_name"),
            bios_vendor: f("bios_vendor"),
            bios_version: f("bios_version"),
        });
    } else {
        p.notes.push(format!("no DMI ({} absent)", dmi.display()));
    }
    let tables = roots.sys.join("firmware/acpi/tables");
    match fs::read_dir(&tables) {
        Ok(dir) => {
            let mut files: Vec<PathBuf> = dir
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                match fs::read(&f) {
                    Ok(bytes) => p.acpi.push(parse_acpi_header(&bytes, &f)?),
                    Err(e) => p.notes.push(format!("{}: {e}", f.display())),
                }
            }
        }
        Err(_) => p
            .notes
            .push(format!("no ACPI tables ({} absent)", tables.display())),
    }
    let dt = roots.sys.join("firmware/devicetree/base");
    if dt.is_dir() {
        let compatible = fs::read(dt.join("compatible"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        p.devicetree = Some(DeviceTree {
            model: read_trimmed(&dt.join("model"))
                .unwrap_or_default()
                .trim_end_matches('\0')
                .to_owned(),
            compatible,
        });
    }
    let cs = roots.sys.join("devices/system/clocksource/clocksource0");
    p.clocksources = (
        read_trimmed(&cs.join("available_clocksource"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        read_trimmed(&cs.join("current_clocksource")).unwrap_or_default(),
    );
    let ioports = read_trimmed(&roots.proc.join("ioports")).unwrap_or_default();
    p.i8042_ports = ioports
        .lines()
        .any(|l| l.trim_start().starts_with("0060-0060 : keyboard"));
    p.cpuinfo_khz = read_trimmed(&roots.proc.join("cpuinfo")).and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("cpu MHz"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|mhz| (mhz * 1000.0).round() as u64)
    });
    Ok(())
}

/// Probes this machine: CPUID (vendor, hypervisor bit and leaf, frequency
/// leaves) and the firmware under `roots`.
///
/// # Errors
/// As [`probe_firmware`].
pub fn probe(roots: &Roots) -> Result<HostProbe, ProbeError> {
    let mut p = HostProbe::default();
    if let Some(l0) = cpuid(0) {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&l0.ebx.to_le_bytes());
        v[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        v[8..].copy_from_slice(&l0.ecx.to_le_bytes());
        p.cpu_vendor = show_signature(&v);
        p.hypervisor_bit = cpuid(1).is_some_and(|r| r.ecx & (1 << 31) != 0);
        p.hypervisor = find_hypervisor(cpuid);
        let leaf = |n: u32| (l0.eax >= n).then(|| cpuid(n)).flatten();
        p.freq_leaves = (leaf(0x15), leaf(0x16));
    } else {
        p.notes
            .push("no CPUID instruction on this architecture".into());
    }
    probe_firmware(roots, &mut p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KVM's leaves as this machine's CPU returns them: leaf 1 with the
    /// hypervisor bit, 0x40000000 = (max 0x40000001, "KVMK", "VMKV", "M").
    fn kvm(leaf: u32) -> Option<Regs> {
        Some(match leaf {
            1 => Regs {
                ecx: 0x8000_0000,
                ..Regs::default()
            },
            0x4000_0000 => Regs {
                eax: 0x4000_0001,
                ebx: 0x4b4d_564b,
                ecx: 0x564b_4d56,
                edx: 0x0000_004d,
            },
            0x4000_0001 => Regs {
                eax: 0x0100_7efb,
                ..Regs::default()
            },
            _ => Regs::default(),
        })
    }

    #[test]
    fn the_kvm_signature_is_found_at_the_first_base() {
        let h = find_hypervisor(kvm).unwrap();
        assert_eq!(h.base, 0x4000_0000);
        assert_eq!(h.max_leaf, 0x4000_0001);
        assert_eq!(h.signature, "KVMKVMKVM");
        assert_eq!(h.vendor, HvVendor::Kvm);
        assert_eq!(
            h.features & KVM_FEATURE_CLOCKSOURCE2,
            KVM_FEATURE_CLOCKSOURCE2
        );
    }

    #[test]
    fn without_the_hypervisor_bit_no_leaf_is_read() {
        let bare = |leaf: u32| {
            assert!(leaf < HV_CPUID_FIRST, "leaf {leaf:#x} read on bare metal");
            Some(Regs::default())
        };
        assert_eq!(find_hypervisor(bare), None);
    }

    #[test]
    fn a_known_vendor_at_a_later_base_wins_over_an_unknown_one_first() {
        // Hyper-V emulation under KVM: "Microsoft Hv" at 0x40000000, KVM at
        // 0x40000100; here an unknown signature first, Xen second.
        let leaves = |leaf: u32| {
            let sig = |s: &[u8; 12], eax: u32| Regs {
                eax,
                ebx: u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
                ecx: u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
                edx: u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
            };
            Some(match leaf {
                1 => Regs {
                    ecx: 1 << 31,
                    ..Regs::default()
                },
                0x4000_0000 => sig(b"TCGTCGTCGTCG", 0x4000_0000),
                0x4000_0100 => sig(b"XenVMMXenVMM", 0x4000_0105),
                _ => Regs::default(),
            })
        };
        let h = find_hypervisor(leaves).unwrap();
        assert_eq!((h.base, h.vendor), (0x4000_0100, HvVendor::XenHvm));
        assert_eq!(
            HvVendor::from_signature(b"TCGTCGTCGTCG"),
            HvVendor::Other("TCGTCGTCGTCG".into())
        );
        assert_eq!(show_signature(b"ab\x01\0\0\0\0\0\0\0\0\0"), "ab\\x01");
    }

    /// The FADT header of a Firecracker guest, byte for byte.
    const FIRECRACKER_FACP: [u8; 36] =
        *b"FACP\x14\x01\0\0\x06\x66FIRECKFCVMFADT\0\0\0\0FCAT\x19\x01\x24\x20";

    #[test]
    fn an_acpi_header_names_the_firmware() {
        let h = parse_acpi_header(&FIRECRACKER_FACP, Path::new("FACP")).unwrap();
        assert_eq!(h.signature, "FACP");
        assert_eq!(h.length, 0x114);
        assert_eq!(h.revision, 6);
        assert_eq!(h.oem_id, "FIRECK");
        assert_eq!(h.oem_table_id, "FCVMFADT");
        assert_eq!(h.oem_revision, 0);
        assert_eq!(h.creator_id, "FCAT");
        let p = HostProbe {
            acpi: vec![h],
            ..HostProbe::default()
        };
        assert_eq!(p.machine_name(), "ACPI OEM FIRECK FCVMFADT (creator FCAT)");
    }

    #[test]
    fn a_bad_acpi_header_is_an_error_naming_file_and_offset() {
        let f = Path::new("/sys/firmware/acpi/tables/FACP");
        let e = parse_acpi_header(&FIRECRACKER_FACP[..20], f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/sys/firmware/acpi/tables/FACP: offset 20: truncated ACPI table header, expected 36 bytes"
        );
        let mut b = FIRECRACKER_FACP;
        b[11] = 0xff;
        let e = parse_acpi_header(&b, f).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "/sys/firmware/acpi/tables/FACP: offset 10: OEM ID is not printable ASCII"
            ),
            "{e}"
        );
        let mut b = FIRECRACKER_FACP;
        b[4..8].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(
            parse_acpi_header(&b, f).unwrap_err(),
            ProbeError::BadLength {
                file: f.to_owned(),
                length: 8
            }
        );
    }

    #[test]
    fn firmware_files_are_read_from_the_given_roots() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("sys");
        let proc = d.path().join("proc");
        fs::create_dir_all(sys.join("firmware/acpi/tables")).unwrap();
        fs::create_dir_all(sys.join("devices/system/clocksource/clocksource0")).unwrap();
        fs::create_dir_all(&proc).unwrap();
        fs::write(sys.join("firmware/acpi/tables/FACP"), FIRECRACKER_FACP).unwrap();
        fs::write(
            sys.join("devices/system/clocksource/clocksource0/available_clocksource"),
            "tsc kvm-clock \n",
        )
        .unwrap();
        fs::write(
            sys.join("devices/system/clocksource/clocksource0/current_clocksource"),
            "tsc\n",
        )
        .unwrap();
        fs::write(
            proc.join("ioports"),
            "0000-0cf7 : PCI Bus 0000:00\n  0060-0060 : keyboard\n  0064-0064 : keyboard\n",
        )
        .unwrap();
        fs::write(
            proc.join("cpuinfo"),
            "processor\t: 0\ncpu MHz\t\t: 2596.144\n",
        )
        .unwrap();
        let mut p = HostProbe::default();
        probe_firmware(&Roots { sys, proc }, &mut p).unwrap();
        assert_eq!(p.dmi, None);
        assert!(p.notes[0].starts_with("no DMI"), "{:?}", p.notes);
        assert_eq!(p.acpi.len(), 1);
        assert_eq!(
            p.clocksources,
            (vec!["tsc".into(), "kvm-clock".into()], "tsc".into())
        );
        assert!(p.i8042_ports);
        assert_eq!(p.cpuinfo_khz, Some(2_596_144));
    }
}
