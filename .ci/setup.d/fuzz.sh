# The fuzz step of .ci/run (.ci/fuzz) builds every crate's fuzz targets with
# cargo-fuzz, from crates.io, on nightly with AddressSanitizer; the nightly
# toolchain itself is there for Miri. Quick when already installed.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version '^0.13'
fi
echo "cargo-fuzz: $(cargo fuzz --version)"
