//! `packet-pipes`: the autofs v5 packet story of seed 002 ("packetized
//! pipes"), as a matrix of daemons against kernel fixes in the model, and
//! the packet pipe itself checked on this machine's kernel.
//!
//! Model part (deterministic): for each daemon (systemd, automount, a
//! program that corrects the size like automount under another name), as a
//! 32- and 64-bit process, and each kernel fix of 2012 (none; 4 bytes less
//! for 32-bit readers; the same unless the reader is called `automount`;
//! packet pipes), the kernel sends three mount requests through a model
//! pipe and the daemon reads them its way (`klab_model::fs::autofs`). The
//! verdict compares who works with the page's account.
//!
//! Host part (real, and deterministic on any kernel since 3.4): three
//! 304-byte packets written into a `pipe2(O_DIRECT)` pipe come back as
//! exactly three 300-byte reads, each decoding to its record; the same
//! writes into an ordinary pipe come back misframed.

use klab_model::fs::autofs::{
    Abi, Daemon, Kernel, KernelFix, Outcome, V5Packet, converse, layout, sample_requests,
};
use klab_uapi::pipe::{PipeFlags, host};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Host, Report, Table, Verdict};

/// The experiment.
pub struct PacketPipes;

/// Whether the page says `daemon` works under `fix` on a 64-bit kernel.
///
/// "if systemd is running as a 32-bit process on a 64-bit kernel, it will
/// get a 304-byte structure when it is expecting 300 bytes" (none);
/// "Ian's patch fixes systemd at the cost of breaking automount" (minus
/// 4); the comm check makes both work but "some other, unknown program
/// with a different name that breaks in the same way automount does ...
/// will remain broken"; with packet pipes "the 3.4 kernel should work fine
/// for either". 64-bit daemons are a pure 64-bit system: fine throughout.
fn page_says(daemon: &Daemon, fix: KernelFix) -> bool {
    if daemon.abi == Abi::X86_64 {
        return true;
    }
    let corrector = daemon.comm != "systemd";
    match fix {
        KernelFix::None => corrector,
        KernelFix::Compat32Minus4 => !corrector,
        KernelFix::CommCheck => daemon.comm == "systemd" || daemon.comm == "automount",
        KernelFix::PacketPipe => true,
    }
}

/// One conversation as a job of the run (it can hibernate between two).
fn conversation(
    ctx: &Ctx<'_>,
    kernel: Kernel,
    daemon: &Daemon,
    requests: &[V5Packet],
) -> Result<klab_model::fs::autofs::Transcript, ExperimentError> {
    ctx.once(
        "packet-pipes: one conversation",
        klab_lab::hibernate::SYSCALL_TICK_NS,
        |span| {
            let tr = converse(kernel, daemon, requests);
            // The kernel's writes and the daemon's reads.
            span.busy(requests.len() as u64 + tr.reads);
            Ok(tr)
        },
    )
}

fn daemons() -> Vec<Daemon> {
    vec![
        Daemon::systemd(Abi::I386),
        Daemon::automount(Abi::I386),
        Daemon::corrector_named("automountd", Abi::I386),
        Daemon::systemd(Abi::X86_64),
        Daemon::automount(Abi::X86_64),
    ]
}

/// What the host check found.
struct HostCheck {
    rows: Vec<(String, Vec<usize>, usize, usize)>,
    packet_ok: bool,
}

/// Writes `records` packets of 304 bytes and reads them back 300 bytes at
/// a time, through a kernel pipe in packet mode and in stream mode.
fn host_check(records: &[V5Packet]) -> Result<HostCheck, String> {
    let mut rows = Vec::new();
    let mut packet_ok = false;
    for packet in [true, false] {
        let (r, w) = host::pipe(PipeFlags {
            packet,
            nonblock: true,
        })
        .map_err(|e| e.to_string())?;
        for rec in records {
            let bytes = rec.encode(Abi::X86_64).map_err(|e| e.to_string())?;
            let n = w.write(&bytes).map_err(|e| format!("write: {e}"))?;
            if n != bytes.len() {
                return Err(format!("short write of {n} bytes"));
            }
        }
        let mut sizes = Vec::new();
        let mut intact = 0;
        let mut buf = [0u8; 300];
        // Bounded: at most one read per byte written.
        for _ in 0..records.len() * 304 {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let i = sizes.len();
                    sizes.push(n);
                    if let (Ok(p), Some(want)) =
                        (V5Packet::decode(&buf[..n], Abi::I386), records.get(i))
                        && p == *want
                    {
                        intact += 1;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let dropped = records.len() * 304 - sizes.iter().sum::<usize>();
        if packet {
            packet_ok = sizes == vec![300; records.len()] && intact == records.len();
        }
        let name = if packet {
            "packet (pipe2 O_DIRECT)"
        } else {
            "stream (pipe2 0)"
        };
        rows.push((name.to_owned(), sizes, intact, dropped));
    }
    Ok(HostCheck { rows, packet_ok })
}

impl PacketPipes {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "packet-pipes",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "The autofs_v5_packet is 300 bytes of fields, 304 with x86-64 padding; 32-bit systemd \
         (checks the size it read) and 32-bit automount (corrects the size itself) on a 64-bit \
         kernel need opposite sizes, so every size fix breaks one of them, while a packetized \
         pipe (each write a packet, a short read drops the rest) serves both.",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for PacketPipes {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let requests = sample_requests();
        r.config("requests", requests.len())
            .config("kernel", "x86-64 (plus an i386 reference)");

        let mut t = Table::new(
            "autofs_v5_packet layout (C rules, computed)",
            &[
                "ABI",
                "fields end (bytes)",
                "sizeof (bytes)",
                "ino offset",
                "tail padding (bytes)",
            ],
        );
        for abi in [Abi::I386, Abi::X86_64] {
            let l = layout(abi);
            let ino = l.fields.iter().find(|f| f.0 == "ino").map_or(0, |f| f.1);
            t.row(cells![
                format!("{}-bit", abi.bits()),
                l.fields_end,
                l.size,
                ino,
                l.size - l.fields_end
            ]);
        }
        r.table(t);

        let mut cols = vec!["daemon", "reads (bytes)"];
        let fix_names: Vec<&str> = KernelFix::ALL.iter().map(|f| f.name()).collect();
        cols.extend(fix_names.iter().copied());
        let mut matrix = Table::new(
            "Who works on a 64-bit kernel: daemons x kernel fixes (3 mount requests)",
            &cols,
        );
        let mut detail = Table::new(
            "Each conversation",
            &[
                "daemon",
                "kernel fix",
                "written (bytes)",
                "read size (bytes)",
                "packet pipe",
                "outcome",
                "handled",
                "handled late",
                "reads",
                "dropped by pipe (bytes)",
            ],
        );
        let mut agree = 0usize;
        let mut cells_total = 0usize;
        let mut disagreements = Vec::new();
        for d in daemons() {
            let k64 = Kernel {
                abi: Abi::X86_64,
                fix: KernelFix::None,
            };
            let mut row = cells![d.label(), d.read_size(&k64)];
            for fix in KernelFix::ALL {
                let kernel = Kernel {
                    abi: Abi::X86_64,
                    fix,
                };
                let tr = conversation(ctx, kernel, &d, &requests)?;
                let works = tr.outcome.works();
                cells_total += 1;
                if works == page_says(&d, fix) {
                    agree += 1;
                } else {
                    disagreements.push(format!("{} under {}", d.label(), fix.name()));
                }
                row.push(
                    if works {
                        "works".to_owned()
                    } else {
                        format!("BROKEN: {}", tr.outcome)
                    }
                    .into(),
                );
                detail.row(cells![
                    d.label(),
                    fix.name(),
                    tr.written,
                    tr.read_size,
                    tr.packet_pipe,
                    tr.outcome.to_string(),
                    tr.handled,
                    tr.late,
                    tr.reads,
                    tr.discarded
                ]);
            }
            matrix.row(row);
        }
        r.table(matrix);
        r.table(detail);

        let mut pure32 = Table::new(
            "Reference: a 32-bit kernel (no fix): both daemons as 32-bit processes",
            &["daemon", "written (bytes)", "read size (bytes)", "outcome"],
        );
        let k32 = Kernel {
            abi: Abi::I386,
            fix: KernelFix::None,
        };
        let mut pure_ok = true;
        for d in [Daemon::systemd(Abi::I386), Daemon::automount(Abi::I386)] {
            let tr = conversation(ctx, k32, &d, &requests)?;
            pure_ok &= tr.outcome == Outcome::Works;
            pure32.row(cells![
                d.label(),
                tr.written,
                tr.read_size,
                tr.outcome.to_string()
            ]);
        }
        r.table(pure32);

        let host = host_check(&requests);
        let mut notes = Vec::new();
        let host_ok = match &host {
            Ok(h) => {
                let mut ht = Table::new(
                    "This host's kernel: 3 records of 304 bytes, read 300 bytes at a time",
                    &[
                        "pipe",
                        "read sizes (bytes)",
                        "records intact",
                        "bytes left unread or dropped",
                    ],
                );
                for (name, sizes, intact, dropped) in &h.rows {
                    let s: Vec<String> = sizes.iter().map(ToString::to_string).collect();
                    ht.row(cells![name.clone(), s.join(", "), *intact, *dropped]);
                }
                r.table(ht);
                notes.push(
                    "the last table is real: pipe2() on this machine's kernel; the other tables \
                     are the model"
                        .to_owned(),
                );
                Some(h.packet_ok)
            }
            Err(e) => {
                notes.push(format!("host check skipped: {e}"));
                None
            }
        };
        r.host = Host {
            real: host_ok.is_some(),
            deterministic: true,
            notes,
        };

        let model_ok = agree == cells_total && pure_ok;
        r.verdict = Verdict {
            holds: Some(model_ok && host_ok != Some(false)),
            measured: format!(
                "{agree} of {cells_total} daemon/fix cells agree with the page; only packet pipes \
                 make all {} daemons work; the host packet pipe gave {}",
                daemons().len(),
                match host_ok {
                    Some(true) => "one intact record per 300-byte read",
                    Some(false) => "something else than one record per read",
                    None => "no result (see host notes)",
                }
            ),
            note: if disagreements.is_empty() {
                "Daemon behaviour is modelled from the page and autofs-tools' get_kpkt_len(); \
                 'automountd' stands for the page's unknown program that corrects the size \
                 under another name."
                    .to_owned()
            } else {
                format!("disagreements: {}", disagreements.join("; "))
            },
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn the_matrix_is_the_pages_and_the_host_pipe_is_packetized() {
        let inputs = Inputs::default();
        let r = PacketPipes.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        assert!(r.verdict.measured.starts_with("20 of 20"));
        let m = &r.tables[1];
        // systemd (32-bit) under "none": broken by the 4 padding bytes.
        assert_eq!(
            m.rows[0][2].display(),
            "BROKEN: gives up at request 2: short read (4 of 300 bytes)"
        );
        assert_eq!(m.rows[0][5].display(), "works");
        if r.host.real {
            let h = r.tables.last().unwrap();
            assert_eq!(h.rows[0][1].display(), "300, 300, 300");
            assert_eq!(h.rows[0][2].display(), "3");
            // A stream pipe hands the 300-byte reader the padding of the
            // first record at the start of the second read.
            assert_eq!(h.rows[1][1].display(), "300, 300, 300, 12");
            assert_eq!(h.rows[1][2].display(), "1");
        }
    }

    #[test]
    fn the_report_is_the_same_for_the_same_seed() {
        let inputs = Inputs::default();
        let a = PacketPipes.run(&Ctx::new(3, true, &inputs)).unwrap();
        let b = PacketPipes.run(&Ctx::new(3, true, &inputs)).unwrap();
        assert_eq!(a, b);
    }
}
