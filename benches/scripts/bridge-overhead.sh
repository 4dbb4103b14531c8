#!/usr/bin/env bash
# What the bridge adds to a container start: `rrun run --rm busybox
# /bin/true` with --network bridge against --network none, interleaved,
# N runs each (default 50) after 5 warm-up runs of each, medians printed.
# Runs in a network namespace of its own (scripts/in-netns.sh), so the
# bridge it makes never touches the machine's network. As root:
#   bash benches/scripts/bridge-overhead.sh [N]
# Uses target/release (or $RBOX_BIN): rrun, rbuild, mkfixtures (bash
# scripts/build-release.sh), and a store in
# a temp dir with the busybox fixture image.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  exec scripts/in-netns.sh bash "$0" "$@"
fi
n=${1:-50}
bin=${RBOX_BIN:-target/release}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
"$bin/mkfixtures" busybox-tar "$store/bb.tar.zst" >/dev/null
"$bin/rbuild" --root "$store" import "$store/bb.tar.zst" busybox >/dev/null
one() { # prints microseconds
  local s=$EPOCHREALTIME
  "$bin/rrun" --root "$store" run --rm --network "$1" busybox /bin/true
  local e=$EPOCHREALTIME
  echo $(( (${e/./} - ${s/./}) ))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
for _ in 1 2 3 4 5; do one none >/dev/null; one bridge >/dev/null; done
none=() bridge=()
for i in $(seq "$n"); do
  if ((i % 2)); then none+=("$(one none)"); bridge+=("$(one bridge)")
  else bridge+=("$(one bridge)"); none+=("$(one none)"); fi
done
mn=$(printf '%s\n' "${none[@]}" | median)
mb=$(printf '%s\n' "${bridge[@]}" | median)
echo "rrun run --rm busybox /bin/true, $n runs each, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  --network none:   median $mn ms"
echo "  --network bridge: median $mb ms"
echo "  bridge adds:      $(awk -v a="$mb" -v b="$mn" 'BEGIN {printf "%.2f", a-b}') ms"
