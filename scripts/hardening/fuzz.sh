#!/usr/bin/env bash
# Fuzz the layer unpacker and the Containerfile parser for SECS seconds each.
# With cargo-fuzz installed (cargo install cargo-fuzz) it runs libFuzzer;
# only a stable toolchain is needed (RUSTC_BOOTSTRAP=1 lets it take the -Z
# flags cargo-fuzz passes). Without cargo-fuzz, or with STABLE=1, it runs
# the stable driver fuzz_stable (seeds + random mutations, same checks).
# Failures land in fuzz/artifacts/<target>/; move the input to
# fuzz/regressions/<target>/ once fixed (both drivers replay it first).
#
# Usage: scripts/hardening/fuzz.sh [SECS=300]
set -euo pipefail
SECS=${1:-300}
cd "$(dirname "$0")/../../fuzz"
cargo build --release --bin fuzz_stable
for t in unpack containerfile; do
  mkdir -p "regressions/$t"
  target/release/fuzz_stable "$t" write-seeds "corpus/$t" >/dev/null
  if [ -z "${STABLE:-}" ] && cargo fuzz --version >/dev/null 2>&1; then
    max_len=4096; [ "$t" = unpack ] && max_len=131072
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" regressions/"$t" -- \
      -max_total_time="$SECS" -max_len=$max_len -rss_limit_mb=2048 -print_final_stats=1
  else
    target/release/fuzz_stable "$t" "$SECS"
  fi
done
