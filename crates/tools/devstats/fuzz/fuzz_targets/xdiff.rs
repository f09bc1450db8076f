//! The xdiff port never panics, and its counts are consistent: the lines
//! kept on each side are equal in number.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(split);
    let (added, removed) = klab_devstats::xdiff::count(a, b);
    let lines = |d: &[u8]| klab_devstats::xdiff::count_lines(d);
    assert_eq!(lines(a) - removed, lines(b) - added);
});
