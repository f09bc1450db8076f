//! `klab replay`: a trace through a policy.

use klab_experiments::mm::replay::{self, ReplayOptions, format_size};

use crate::flags::ReplayArgs;
use crate::messages;
use crate::progress::Bar;

pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<u8> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = ReplayOptions {
        trace: args.trace.clone(),
        format: args.format,
        memory: args.memory,
        policy: args.policy,
        unit: args.unit.map(Into::into),
        ignore_size: args.ignore_size,
        block_size: args.block_size,
        mrc: args.mrc,
        threads,
    };
    let result = replay::run(&opts, &Bar::new())?;
    let json_stdout = super::json_to_stdout(args.json.as_deref());
    let written =
        super::write_report_files(vec![result.report.clone()], &args.out, args.json.as_deref())?;
    if !json_stdout {
        let s = result.main.stats;
        let memory = if args.ignore_size {
            format!("{} objects", args.memory)
        } else {
            format_size(args.memory)
        };
        let mut out = format!(
            "trace:        {}\npolicy:       {} ({} unit, {memory})\nrequests:     {}\nhits:         {}\nmisses:       {}\nhit ratio:    {:.4}\nmiss bytes:   {}\nevictions:    {}\n",
            args.trace.display(),
            args.policy,
            result.unit.name(),
            s.requests,
            s.hits,
            s.misses,
            s.hit_ratio(),
            s.miss_bytes,
            s.evictions,
        );
        if let Some(r) = result.main.refaults {
            out.push_str(&format!("refaults:     {r}\n"));
        }
        if let Some(a) = result.main.activations {
            out.push_str(&format!("activations:  {a}\n"));
        }
        out.push_str(&format!(
            "speed:        {:.0} requests/s (trace parsed in {:.3} s)\nkeys:         {} distinct\n",
            result.requests_per_sec, result.parse_secs, result.distinct_keys
        ));
        match (result.bytes_per_key, args.policy.is_kernel()) {
            (Some(b), false) => out.push_str(&format!("state:        {b:.1} bytes per cached object\n")),
            (Some(b), true) => out.push_str(&format!(
                "state:        {b:.1} bytes per page frame (struct page and page-cache radix-tree nodes, shadows included)\n"
            )),
            (None, _) => {}
        }
        if !result.mrc.is_empty() {
            out.push_str("\nmiss-ratio curve:\n");
            for o in &result.mrc {
                let m = if args.ignore_size {
                    o.memory.to_string()
                } else {
                    format_size(o.memory)
                };
                out.push_str(&format!("  {m:>12}  {:.4}\n", o.stats.miss_ratio()));
            }
        }
        out.push_str(&super::reports_line(&written));
        messages::out(&out);
    }
    Ok(0)
}
