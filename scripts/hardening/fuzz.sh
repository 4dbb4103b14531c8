#!/usr/bin/env bash
# Fuzz the layer unpacker and the Containerfile parser for SECS seconds each.
# With cargo-fuzz installed (cargo install cargo-fuzz) it runs libFuzzer;
# only a stable toolchain is needed (RUSTC_BOOTSTRAP=1 lets it take the -Z
# flags cargo-fuzz passes). Without cargo-fuzz, or with STABLE=1, it runs
# the stable driver fuzz_stable (seeds + random mutations, same checks).
# Failures land in fuzz/artifacts/<target>/; move the input to
# fuzz/regressions/<target>/ once fixed (both drivers replay it first, and
# builder/tests/hardening_fuzz_found.rs replays every one in CI).
#
# Usage: scripts/hardening/fuzz.sh [SECS=300]
set -euo pipefail
SECS=${1:-300}
cd "$(dirname "$0")/../../fuzz"
cargo build --release --bin fuzz_stable
# Where cargo put it: CARGO_TARGET_DIR moves it out of fuzz/target (a stale
# copy there ran instead of the one just built).
stable=${CARGO_TARGET_DIR:-target}/release/fuzz_stable
for t in unpack containerfile; do
  mkdir -p "regressions/$t"
  "$stable" "$t" write-seeds "corpus/$t" >/dev/null
  if [ -z "${STABLE:-}" ] && cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: $t: cargo fuzz (libFuzzer) for $SECS s" >&2
    max_len=4096; [ "$t" = unpack ] && max_len=131072
    # One malloc over 1 GiB is a failure, as in fuzz_stable: under the
    # 2 GiB rss limit alone, a 13-byte zstd header that reserves 2 GiB
    # was over by 0.02 %, and one asking 1.9 GiB would pass.
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" regressions/"$t" -- \
      -max_total_time="$SECS" -max_len=$max_len -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -print_final_stats=1
  else
    echo "fuzz.sh: $t: the stable driver fuzz_stable for $SECS s (no cargo-fuzz, or STABLE=1)" >&2
    "$stable" "$t" "$SECS"
  fi
done
