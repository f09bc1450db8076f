//! `packet-pipes`: the autofs v5 packet story of seed 002 ("packetized
//! pipes"), as a matrix of daemons against kernel fixes in the model, and
//! the packet pipe itself checked on this machine's kernel.
//!
//! Model part (deterministic): for each daemon (systemd, automount, a
//! program that corrects the size like automount under another name), as a
//! 32- and 64-bit process, and each kernel fix of 2012 (none; 4 bytes less
//! for 32-bit readers; the same unless the reader is called `automount`;
//! packet pipes), the kernel sends three mount requests through a model
//! pipe and the daemon reads them its way (`klab_model::fs::autofs`).
//!
//! Host part (real, and deterministic on any kernel since 3.4): three
//! 304-byte packets written into a `pipe2(O_DIRECT)` pipe come back as
//! exactly three 300-byte reads, each decoding to its record; the same
//! writes into an ordinary pipe come back misframed.
//!
//! # Verdict
//!
//! From the conversations: the claim holds when some daemon breaks on the
//! unfixed 64-bit kernel, each size fix (4 bytes less for 32-bit readers,
//! with or without the `automount` exception) leaves at least
//! [`MIN_BROKEN_UNDER_A_SIZE_FIX`] daemon broken, every daemon works with
//! the packet pipe, both daemons work on a pure 32-bit system, and the
//! host's packet pipe (when it could be checked) returns one intact record
//! per read. When no daemon breaks on the unfixed kernel there is nothing
//! for a fix to do, and the verdict is null.
//!
//! # When the claim fails
//!
//! On a 64-bit kernel whose only autofs daemon is 32-bit systemd (a
//! userland without automount, [`Config::systemd_only`]): 3.3-rc5's "4
//! bytes less for 32-bit readers" then serves every daemon, so a size fix
//! does not break one of them. The test
//! `a_systemd_only_userland_is_served_by_a_size_fix` runs it.

use klab_model::fs::autofs::{
    Abi, Daemon, Kernel, KernelFix, Outcome, ReadPolicy, Transcript, V5Packet, converse, layout,
    sample_requests,
};
use klab_uapi::pipe::{PipeFlags, host};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Host, Report, Table, Verdict};

/// The experiment.
pub struct PacketPipes;

/// Daemons each size fix must leave broken for "every size fix breaks one
/// of them" to hold.
pub const MIN_BROKEN_UNDER_A_SIZE_FIX: usize = 1;

/// An automount daemon as configured: its command name, how it reads, its
/// ABI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSpec {
    /// `current->comm`.
    pub comm: String,
    /// True: corrects the size itself (automount's way); false: checks
    /// the size it read (systemd's).
    pub corrects_size: bool,
    /// 32 or 64.
    pub bits: u32,
}

impl DaemonSpec {
    fn of(d: &Daemon) -> Self {
        DaemonSpec {
            comm: d.comm.clone(),
            corrects_size: d.policy == ReadPolicy::CorrectsSize,
            bits: d.abi.bits(),
        }
    }

    fn daemon(&self) -> Daemon {
        Daemon {
            comm: self.comm.clone(),
            policy: if self.corrects_size {
                ReadPolicy::CorrectsSize
            } else {
                ReadPolicy::ChecksSize
            },
            abi: if self.bits == 32 {
                Abi::I386
            } else {
                Abi::X86_64
            },
        }
    }
}

/// What a run is measured with: the daemons of the userland on the 64-bit
/// kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The daemons, in table order.
    pub daemons: Vec<DaemonSpec>,
}

impl Config {
    /// The page's daemons: systemd, automount and a program that corrects
    /// the size under another name as 32-bit processes; systemd and
    /// automount as 64-bit ones.
    pub fn page() -> Self {
        Config {
            daemons: [
                Daemon::systemd(Abi::I386),
                Daemon::automount(Abi::I386),
                Daemon::corrector_named("automountd", Abi::I386),
                Daemon::systemd(Abi::X86_64),
                Daemon::automount(Abi::X86_64),
            ]
            .iter()
            .map(DaemonSpec::of)
            .collect(),
        }
    }

    /// A userland without automount: systemd as a 32- and a 64-bit
    /// process.
    pub fn systemd_only() -> Self {
        Config {
            daemons: [Daemon::systemd(Abi::I386), Daemon::systemd(Abi::X86_64)]
                .iter()
                .map(DaemonSpec::of)
                .collect(),
        }
    }
}

/// The packet's layout under one ABI.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayoutRow {
    /// 32 or 64.
    pub bits: u32,
    /// Where the last field ends.
    pub fields_end: usize,
    /// `sizeof`.
    pub size: usize,
    /// The offset of `ino`.
    pub ino: usize,
}

/// One pipe of the host check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostRow {
    /// The pipe's mode.
    pub pipe: String,
    /// Bytes each read returned.
    pub sizes: Vec<usize>,
    /// Reads that decoded to the record written.
    pub intact: usize,
    /// Bytes written and never read.
    pub dropped: usize,
}

/// What the host check found: its rows, or why it could not run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostCheck {
    /// Packet pipe first, then stream pipe.
    pub rows: Vec<HostRow>,
    /// The packet pipe gave one intact record per read.
    pub packet_ok: bool,
}

/// What the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// The configuration.
    pub config: Config,
    /// Mount requests the kernel sends in each conversation.
    pub requests: usize,
    /// The packet's layout on i386 and x86-64.
    pub layouts: Vec<LayoutRow>,
    /// Per daemon: what it reads on the unfixed 64-bit kernel.
    pub read_sizes: Vec<usize>,
    /// Per daemon, per fix of `KernelFix::ALL`: the conversation.
    pub conversations: Vec<Vec<Transcript>>,
    /// The reference: both daemons as 32-bit processes on a 32-bit kernel.
    pub pure32: Vec<(String, Transcript)>,
    /// The host check, or why it was skipped.
    pub host: Result<HostCheck, String>,
}

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
    let corrector = daemon.policy == ReadPolicy::CorrectsSize;
    match fix {
        KernelFix::None => corrector,
        KernelFix::Compat32Minus4 => !corrector,
        KernelFix::CommCheck => !corrector || daemon.comm == "automount",
        KernelFix::PacketPipe => true,
    }
}

/// One conversation as a job of the run (it can hibernate between two).
fn conversation(
    ctx: &Ctx<'_>,
    kernel: Kernel,
    daemon: &Daemon,
    requests: &[V5Packet],
) -> Result<Transcript, ExperimentError> {
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
        let pipe = if packet {
            "packet (pipe2 O_DIRECT)"
        } else {
            "stream (pipe2 0)"
        };
        rows.push(HostRow {
            pipe: pipe.to_owned(),
            sizes,
            intact,
            dropped,
        });
    }
    Ok(HostCheck { rows, packet_ok })
}

impl PacketPipes {
    /// Measures with `cfg` (the built-in run uses [`Config::page`]).
    ///
    /// # Errors
    /// A run stopped to hibernate.
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: Config) -> Result<Data, ExperimentError> {
        let requests = sample_requests();
        let layouts = [Abi::I386, Abi::X86_64]
            .into_iter()
            .map(|abi| {
                let l = layout(abi);
                LayoutRow {
                    bits: abi.bits(),
                    fields_end: l.fields_end,
                    size: l.size,
                    ino: l.fields.iter().find(|f| f.0 == "ino").map_or(0, |f| f.1),
                }
            })
            .collect();
        let k64 = |fix| Kernel {
            abi: Abi::X86_64,
            fix,
        };
        let mut read_sizes = Vec::new();
        let mut conversations = Vec::new();
        for spec in &cfg.daemons {
            let d = spec.daemon();
            read_sizes.push(d.read_size(&k64(KernelFix::None)));
            let mut row = Vec::new();
            for fix in KernelFix::ALL {
                row.push(conversation(ctx, k64(fix), &d, &requests)?);
            }
            conversations.push(row);
        }
        let k32 = Kernel {
            abi: Abi::I386,
            fix: KernelFix::None,
        };
        let mut pure32 = Vec::new();
        for d in [Daemon::systemd(Abi::I386), Daemon::automount(Abi::I386)] {
            pure32.push((d.label(), conversation(ctx, k32, &d, &requests)?));
        }
        Ok(Data {
            config: cfg,
            requests: requests.len(),
            layouts,
            read_sizes,
            conversations,
            pure32,
            host: host_check(&requests),
        })
    }
}

/// The labels of the daemons `fix` leaves broken.
fn broken(d: &Data, fix: usize) -> Vec<String> {
    d.config
        .daemons
        .iter()
        .zip(&d.conversations)
        .filter(|(_, row)| !row[fix].outcome.works())
        .map(|(s, _)| s.daemon().label())
        .collect()
}

fn fix_index(fix: KernelFix) -> usize {
    KernelFix::ALL.iter().position(|f| *f == fix).unwrap_or(0)
}

/// The page's account against the model's: (cells that agree, cells).
fn agreement(d: &Data) -> (usize, usize) {
    let mut agree = 0;
    let mut total = 0;
    for (spec, row) in d.config.daemons.iter().zip(&d.conversations) {
        for (fix, tr) in KernelFix::ALL.iter().zip(row) {
            total += 1;
            agree += usize::from(tr.outcome.works() == page_says(&spec.daemon(), *fix));
        }
    }
    (agree, total)
}

impl Experiment for PacketPipes {
    type Data = Data;

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

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        self.measure_with(ctx, Config::page())
    }

    fn judge(&self, d: &Data) -> Verdict {
        let n = d.config.daemons.len();
        let per_fix: Vec<(KernelFix, Vec<String>)> = KernelFix::ALL
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, broken(d, i)))
            .collect();
        let serving: Vec<&str> = per_fix
            .iter()
            .filter(|(_, b)| b.is_empty())
            .map(|(f, _)| f.name())
            .collect();
        let host = match &d.host {
            Ok(h) if h.packet_ok => "one intact record per 300-byte read",
            Ok(_) => "something else than one record per read",
            Err(_) => "no result (see host notes)",
        };
        let (agree, cells) = agreement(d);
        let measured = format!(
            "on a 64-bit kernel: {}; fixes under which all {n} daemons work: {}; the host packet \
             pipe gave {host}",
            per_fix
                .iter()
                .map(|(f, b)| format!(
                    "{} breaks {}",
                    f.name(),
                    if b.is_empty() {
                        "none".to_owned()
                    } else {
                        b.join(", ")
                    }
                ))
                .collect::<Vec<_>>()
                .join("; "),
            if serving.is_empty() {
                "none".to_owned()
            } else {
                serving.join(", ")
            }
        );
        let note = format!(
            "Daemon behaviour is modelled from the page and autofs-tools' get_kpkt_len(); \
             'automountd' stands for the page's unknown program that corrects the size under \
             another name. The model's outcomes agree with the page's account in {agree} of \
             {cells} daemon/fix cells."
        );
        if per_fix[fix_index(KernelFix::None)].1.is_empty() {
            return Verdict {
                holds: None,
                measured,
                note: format!(
                    "No daemon breaks on the unfixed kernel: there is nothing for a fix to do. \
                     {note}"
                ),
            };
        }
        let size_fixes_break = [KernelFix::Compat32Minus4, KernelFix::CommCheck]
            .iter()
            .all(|f| per_fix[fix_index(*f)].1.len() >= MIN_BROKEN_UNDER_A_SIZE_FIX);
        let packet_serves = per_fix[fix_index(KernelFix::PacketPipe)].1.is_empty();
        let pure_ok = d.pure32.iter().all(|(_, tr)| tr.outcome == Outcome::Works);
        let host_ok = !matches!(&d.host, Ok(h) if !h.packet_ok);
        Verdict {
            holds: Some(size_fixes_break && packet_serves && pure_ok && host_ok),
            measured,
            note,
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        r.config("requests", d.requests)
            .config("kernel", "x86-64 (plus an i386 reference)")
            .config(
                "daemons",
                d.config
                    .daemons
                    .iter()
                    .map(|s| s.daemon().label())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .config(
                "threshold.min_broken_under_a_size_fix",
                MIN_BROKEN_UNDER_A_SIZE_FIX,
            );
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
        for l in &d.layouts {
            t.row(cells![
                format!("{}-bit", l.bits),
                l.fields_end,
                l.size,
                l.ino,
                l.size - l.fields_end
            ]);
        }
        r.table(t);
        conversation_tables(d, r);
        let mut pure32 = Table::new(
            "Reference: a 32-bit kernel (no fix): both daemons as 32-bit processes",
            &["daemon", "written (bytes)", "read size (bytes)", "outcome"],
        );
        for (label, tr) in &d.pure32 {
            pure32.row(cells![
                label.clone(),
                tr.written,
                tr.read_size,
                tr.outcome.to_string()
            ]);
        }
        r.table(pure32);
        host_table(d, r);
    }
}

/// The matrix of daemons against fixes, and each conversation.
fn conversation_tables(d: &Data, r: &mut Report) {
    let mut cols = vec!["daemon", "reads (bytes)"];
    cols.extend(KernelFix::ALL.iter().map(|f| f.name()));
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
    for ((spec, read), row) in d
        .config
        .daemons
        .iter()
        .zip(&d.read_sizes)
        .zip(&d.conversations)
    {
        let label = spec.daemon().label();
        let mut m = cells![label.clone(), *read];
        for (fix, tr) in KernelFix::ALL.iter().zip(row) {
            m.push(
                if tr.outcome.works() {
                    "works".to_owned()
                } else {
                    format!("BROKEN: {}", tr.outcome)
                }
                .into(),
            );
            detail.row(cells![
                label.clone(),
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
        matrix.row(m);
    }
    r.table(matrix);
    r.table(detail);
}

/// The host check's table and notes.
fn host_table(d: &Data, r: &mut Report) {
    let mut notes = Vec::new();
    match &d.host {
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
            for row in &h.rows {
                let s: Vec<String> = row.sizes.iter().map(ToString::to_string).collect();
                ht.row(cells![
                    row.pipe.clone(),
                    s.join(", "),
                    row.intact,
                    row.dropped
                ]);
            }
            r.table(ht);
            notes.push(
                "the last table is real: pipe2() on this machine's kernel; the other tables are \
                 the model"
                    .to_owned(),
            );
        }
        Err(e) => notes.push(format!("host check skipped: {e}")),
    }
    r.host = Host {
        real: d.host.is_ok(),
        deterministic: true,
        notes,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run;
    use klab_lab::experiment::Inputs;

    fn measured(cfg: Config) -> Data {
        let inputs = Inputs::default();
        PacketPipes
            .measure_with(&Ctx::new(1, true, &inputs), cfg)
            .unwrap()
    }

    #[test]
    fn the_matrix_is_the_pages_and_the_host_pipe_is_packetized() {
        let inputs = Inputs::default();
        let r = PacketPipes.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        assert!(
            r.verdict
                .measured
                .contains("fixes under which all 5 daemons work: packet pipe;"),
            "{}",
            r.verdict.measured
        );
        assert!(r.verdict.note.contains("in 20 of 20"), "{}", r.verdict.note);
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
    fn a_systemd_only_userland_is_served_by_a_size_fix() {
        let d = measured(Config::systemd_only());
        let v = PacketPipes.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert!(
            v.measured.contains(
                "fixes under which all 2 daemons work: minus 4 for 32-bit readers, minus 4 \
                 unless comm is automount, packet pipe"
            ),
            "{}",
            v.measured
        );
    }

    #[test]
    fn a_64_bit_userland_leaves_nothing_to_fix() {
        let d = measured(Config {
            daemons: Config::page()
                .daemons
                .into_iter()
                .filter(|s| s.bits == 64)
                .collect(),
        });
        let v = PacketPipes.judge(&d);
        assert_eq!(v.holds, None, "{}", v.measured);
        assert!(v.note.starts_with("No daemon breaks"), "{}", v.note);
    }

    #[test]
    fn the_verdict_fails_when_the_packet_pipe_breaks_a_daemon_or_the_host_misframes() {
        let d = measured(Config::page());
        assert_eq!(PacketPipes.judge(&d).holds, Some(true));
        let mut broken_pipe = d.clone();
        let p = fix_index(KernelFix::PacketPipe);
        broken_pipe.conversations[1][p].outcome = Outcome::Garbled { at: 0 };
        let v = PacketPipes.judge(&broken_pipe);
        assert_eq!(v.holds, Some(false));
        assert!(
            v.measured.contains("packet pipe breaks automount (32-bit)"),
            "{}",
            v.measured
        );
        let mut misframed = d;
        misframed.host = Ok(HostCheck {
            rows: Vec::new(),
            packet_ok: false,
        });
        assert_eq!(PacketPipes.judge(&misframed).holds, Some(false));
    }

    #[test]
    fn the_report_is_the_same_for_the_same_seed() {
        let inputs = Inputs::default();
        let a = PacketPipes.run(&Ctx::new(3, true, &inputs)).unwrap();
        let b = PacketPipes.run(&Ctx::new(3, true, &inputs)).unwrap();
        assert_eq!(a, b);
    }
}
