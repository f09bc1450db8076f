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
        no_opt: args.no_opt,
        sample: args.sample,
        sample_check: args.sample_check,
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
            "speed:        {:.0} requests/s ({:.3} s reading and replaying, one pass)\nkeys:         {} distinct\n",
            result.requests_per_sec, result.secs, result.distinct_keys
        ));
        match (result.bytes_per_key, args.policy.is_kernel()) {
            (Some(b), false) => out.push_str(&format!("state:        {b:.1} bytes per cached object\n")),
            (Some(b), true) => out.push_str(&format!(
                "state:        {b:.1} bytes per page frame (struct page and page-cache radix-tree nodes, shadows included)\n"
            )),
            (None, _) => {}
        }
        if let Some(rate) = args.sample {
            out.push_str(&format!(
                "sample:       SHARDS at rate {rate} (counts are the sample's)\n"
            ));
        }
        if !result.mrc.is_empty() {
            let opt = !result.mrc_opt.is_empty();
            let exact = !result.mrc_exact.is_empty();
            out.push_str(&format!(
                "\nmiss-ratio curve:\n  {:>12}  {:>10}{}{}\n",
                "memory",
                args.policy.name(),
                if opt { "         opt" } else { "" },
                if exact { "       exact" } else { "" }
            ));
            for (i, o) in result.mrc.iter().enumerate() {
                let m = if args.ignore_size {
                    o.memory.to_string()
                } else {
                    format_size(o.memory)
                };
                out.push_str(&format!("  {m:>12}  {:>10.4}", o.miss_ratio()));
                if let Some(b) = result.mrc_opt.get(i) {
                    out.push_str(&format!("  {:>10.4}", b.miss_ratio()));
                }
                if let Some(b) = result.mrc_exact.get(i) {
                    out.push_str(&format!("  {:>10.4}", b.miss_ratio()));
                }
                out.push('\n');
            }
            if exact {
                let (mean, max) = replay::curve_error(&result.mrc, &result.mrc_exact);
                out.push_str(&format!(
                    "SHARDS error: mean {mean:.4}, largest {max:.4} (absolute miss ratio)\n"
                ));
            }
        }
        out.push_str(&super::reports_line(&written));
        messages::out(&out);
    }
    Ok(0)
}
