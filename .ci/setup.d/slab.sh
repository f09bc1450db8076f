# `klab bench slub` times real programs under LD_PRELOAD on klab's SLUB
# against the system mimalloc (crates/experiments/src/bench/slub_preload.rs);
# without it the mimalloc column stays empty.
if [ ! -e /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libmimalloc2.0 || echo "libmimalloc2.0 not installable: mimalloc column skipped"
fi

# The preload tests compile a C++ program (its exceptions unwind through
# its own libgcc_s while malloc is the preload's, which carries a static
# unwinder); without g++ that test is skipped.
if ! command -v g++ >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends g++ || echo "g++ not installable: the C++ preload test is skipped"
fi
