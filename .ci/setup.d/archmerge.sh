# archmerge compiles its generated i386 and x86_64 trees with gcc -m32 and
# -m64 before and after the merge (crates/experiments/src/tools/archmerge/
# build.rs); -m32 needs the 32-bit libgcc and headers of gcc-multilib.
# Without it the build is skipped and the report says why.
if ! echo 'int f(void) { return 0; }' | gcc -m32 -x c -c -o /dev/null - 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends gcc-multilib ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc-multilib; } ||
    echo "gcc-multilib not installable: archmerge's compiled images skipped"
fi
