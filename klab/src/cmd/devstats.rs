//! `klab devstats`: the page's development statistics for a git range.

use anyhow::Context as _;
use klab_devstats::{CacheLocation, EmployerMap, Options, Selection, date, output};

use crate::flags::DevstatsArgs;
use crate::messages;
use crate::progress::Bar;

/// The devstats progress hook on klab's terminal bar.
struct CommitBar(Bar);

impl klab_devstats::Progress for CommitBar {
    fn begin(&self, total: u64) {
        klab_lab::Progress::begin(&self.0, "diffing commits", total);
    }
    fn advance(&self, n: u64) {
        klab_lab::Progress::advance(&self.0, n);
    }
    fn end(&self) {
        klab_lab::Progress::end(&self.0);
    }
}

pub(crate) fn run(args: &DevstatsArgs) -> anyhow::Result<u8> {
    let map = match &args.employers {
        Some(path) => {
            let map = EmployerMap::load(path)?;
            for w in map.warnings() {
                messages::error(format_args!("warning: {w}"));
            }
            map
        }
        None => EmployerMap::new(),
    };
    let sel = Selection {
        range: args.range.clone(),
        since: args.since.as_deref().map(date::parse_time).transpose()?,
        until: args.until.as_deref().map(date::parse_time).transpose()?,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let opts = Options {
        threads,
        cache: match (&args.cache_dir, args.no_cache) {
            (_, true) => CacheLocation::Off,
            (Some(dir), false) => CacheLocation::Dir(dir.clone()),
            (None, false) => CacheLocation::GitDir,
        },
        changed_lines: args.changed_lines,
    };
    let counted = klab_devstats::count(&args.repo, &sel, &map, &opts, &CommitBar(Bar::new()))
        .with_context(|| format!("devstats {}", args.repo.display()))?;
    for w in &counted.warnings {
        messages::error(format_args!("warning: {w}"));
    }
    let report = counted.report(args.top.max(2));
    let json_stdout = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(dir) = &args.csv {
        output::write_csv(dir, &report)?;
    }
    match &args.json {
        Some(_) if json_stdout => messages::out(&output::json(&report)),
        Some(path) => output::write_json(path, &report)?,
        None => {}
    }
    if !json_stdout {
        messages::out(&output::text(&report, args.top));
    }
    Ok(0)
}
