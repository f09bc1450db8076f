//! `klab lro`: aggregate a capture's TCP segments with LRO or GRO, write
//! the aggregated capture, print the statistics, and check that every flow
//! carries the same payload bytes in and out.

use std::io::{BufWriter, Write as _};

use anyhow::{Context as _, bail};
use klab_lab::output::AtomicFile;
use klab_lro::capture::{self, CaptureWriter};
use klab_lro::napi::{self, Tagged};
use klab_lro::stream::Streams;
use klab_lro::{
    Capture, CaptureFormat, Checksum, Engine, FlushReason, GroConfig, LroConfig, Mode, NapiConfig,
    PassReason, Replay,
};

use crate::flags::LroArgs;
use crate::messages;

pub(crate) fn run(args: &LroArgs) -> anyhow::Result<u8> {
    let path = &args.input;
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let bytes = capture::read(file).with_context(|| format!("{}", path.display()))?;
    let cap = Capture::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let Some(link) = cap.link() else {
        bail!(
            "{}: link type {} is not supported; klab reads Ethernet (1), raw IP (101, 228, 229) and Linux cooked (113)",
            path.display(),
            cap.dlt
        );
    };
    let mut engine = engine(args, link)?;
    let napi_cfg = NapiConfig {
        budget: args.budget.max(1),
        rx_usecs: args.rx_usecs,
    };
    let r = napi::replay(&mut engine, &cap.packets, &napi_cfg);

    // What the stack sees must be what the wire carried, flow by flow.
    let input = Streams::of(link, cap.packets.iter().map(|p| p.data));
    let written = r.file_order(&cap.packets);
    let frames: Vec<Vec<u8>> = written.iter().map(|(_, o)| o.skb.to_vec()).collect();
    let output = Streams::of(link, frames.iter().map(Vec::as_slice));
    let check = input.compare(&output);

    if let Some(out) = &args.out {
        let mut w = CaptureWriter::new(
            BufWriter::new(AtomicFile::create(out)?),
            CaptureFormat::for_path(out),
            link.dlt(),
        )
        .with_context(|| format!("{}", out.display()))?;
        for ((ts_ns, o), f) in written.iter().zip(&frames) {
            w.write(*ts_ns, o.orig_len, f)
                .with_context(|| format!("{}", out.display()))?;
        }
        w.into_inner()
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("{}", out.display()))?
            .commit()?;
    }

    let mut t = summary(args, &cap, &r);
    let line = |t: &mut String, k: &str, v: String| t.push_str(&format!("{k:<28} {v}\n"));
    match &check {
        Ok(()) => line(
            &mut t,
            "stream payloads",
            format!(
                "identical: {} flows, {} bytes",
                input.flows.len(),
                input.total_bytes()
            ),
        ),
        Err(e) => line(&mut t, "stream payloads", format!("DIFFER: {e}")),
    }
    if let Some(out) = &args.out {
        line(&mut t, "written", out.display().to_string());
    }
    messages::out(&t);
    let _ = std::io::stdout().flush();
    let st = &r.stats;
    if st.mostly_bad_checksums() {
        let bad = st.passed(PassReason::BadChecksum);
        messages::error(format_args!(
            "{}: {bad} of {} TCP segments have wrong checksums (neither valid nor partial) and went up unmerged; if the capture's checksums are known good or were never finished, run with --trust-checksums",
            path.display(),
            bad + st.csum_verified + st.csum_partial,
        ));
    }
    if let Err(e) = check {
        bail!(
            "{}: aggregation changed a flow's payload: {e}",
            path.display()
        );
    }
    Ok(0)
}

/// Whether the flags trust the capture's checksums.
fn checksum(args: &LroArgs) -> Checksum {
    if args.trust_checksums {
        Checksum::Trust
    } else {
        Checksum::Verify
    }
}

/// The LRO or GRO engine the flags describe.
fn engine<'a>(args: &LroArgs, link: klab_lro::LinkType) -> anyhow::Result<Engine<Tagged<'a>>> {
    let checksum = checksum(args);
    Ok(match Mode::from(args.mode) {
        Mode::Lro => Engine::lro(
            LroConfig {
                max_desc: args.max_desc,
                max_aggr: args.max_aggr.unwrap_or(LroConfig::default().max_aggr),
                mtu: args.mtu,
                lookup: args.lookup.into(),
                checksum,
            },
            link,
        )?,
        Mode::Gro => {
            if args.max_aggr.is_some() {
                bail!("--max-aggr applies to lro mode only: GRO merges until 64 KiB");
            }
            Engine::gro(
                GroConfig {
                    max_held: args.max_desc,
                    checksum,
                    ..GroConfig::default()
                },
                link,
            )?
        }
    })
}

/// The statistics of a replay, one `name value` line each.
fn summary(args: &LroArgs, cap: &Capture<'_>, r: &Replay<'_>) -> String {
    let st = &r.stats;
    let mut t = String::new();
    let line = |t: &mut String, k: &str, v: String| t.push_str(&format!("{k:<28} {v}\n"));
    line(
        &mut t,
        "capture",
        format!(
            "{} ({:?}, link type {})",
            args.input.display(),
            cap.format,
            cap.dlt
        ),
    );
    line(&mut t, "mode", Mode::from(args.mode).name().to_owned());
    line(&mut t, "packets in", st.packets_in.to_string());
    line(&mut t, "packets out", st.packets_out.to_string());
    line(
        &mut t,
        "out / in",
        format!(
            "{:.4} (stack work saved {:.1}%)",
            st.out_per_in(),
            100.0 * (1.0 - st.out_per_in())
        ),
    );
    line(&mut t, "aggregated", st.aggregated.to_string());
    line(&mut t, "flushed", st.flushed.to_string());
    line(&mut t, "merged packets (segs > 1)", st.merged.to_string());
    line(&mut t, "no_desc", st.no_desc.to_string());
    if checksum(args) == Checksum::Verify {
        line(&mut t, "csum_verified", st.csum_verified.to_string());
    }
    // Fields holding only the pseudo-header sum (CHECKSUM_PARTIAL: the
    // capture was taken on the sending host), taken as the kernel takes them.
    line(&mut t, "csum_partial", st.csum_partial.to_string());
    line(&mut t, "polls", r.polls.to_string());
    line(
        &mut t,
        "peak held",
        format!(
            "{} packets, {} bytes",
            r.peak_held_packets, r.peak_held_bytes
        ),
    );
    let mut held = format!(
        "mean {:.2} arrivals (max {})",
        r.mean_held_arrivals(),
        r.held_arrivals_max
    );
    if args.rx_usecs.is_some() {
        // Capture time is only meaningful when polls follow it.
        held.push_str(&format!(
            ", mean {:.1} us (max {:.1} us)",
            r.mean_held_us(),
            r.held_ns_max as f64 / 1000.0
        ));
    }
    line(&mut t, "held per merged frame", held);
    for reason in PassReason::ALL {
        let n = st.passed(reason);
        if n > 0 {
            line(&mut t, &format!("passed: {}", reason.name()), n.to_string());
        }
    }
    for reason in FlushReason::ALL {
        let n = st.flushes(reason);
        if n > 0 {
            line(
                &mut t,
                &format!("flushed: {}", reason.name()),
                n.to_string(),
            );
        }
    }
    t
}
