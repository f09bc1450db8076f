//! Links the GCC unwinder into the library (`libgcc_eh.a`, whole) instead
//! of loading `libgcc_s.so.1` beside it.
//!
//! Rust's standard library refers to `_Unwind_*` (panics, backtraces), so
//! a cdylib on `*-linux-gnu` is linked with `-lgcc_s` and the dynamic
//! linker maps and relocates `libgcc_s` into every program the library is
//! preloaded into: about 100 KiB of resident pages that glibc's own malloc
//! does not cost (measured with `/usr/bin/time -f %M` on mimalloc-bench's
//! espresso and cfrac, see the crate README of klab-slab). With the static
//! unwinder placed before `-lgcc_s` on the link line, `--as-needed` drops
//! the `NEEDED` entry; the version script of a cdylib keeps its symbols
//! local, so a program's own `libgcc_s` (C++ exceptions) is unaffected.
//! This library never unwinds across its C entry points: a panic there
//! aborts (`extern "C"`).

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-lib=static:+whole-archive=gcc_eh");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
