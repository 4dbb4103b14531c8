#!/usr/bin/env bash
# Two rrun binaries side by side: `rrun run --rm busybox /bin/true`, N runs
# each (default 40) taken round-robin (A, B, A, B, ...) after 2 warm-up
# runs each, on one private store with the fixtures' busybox image. Prints
# each binary's median and min-max wall time in ms, the ratio B/A of the
# medians, and the load average before and after. As root:
#   bash benches/scripts/rrun-startup-ab.sh OLD_RRUN NEW_RRUN [N]
# Needs target/debug (or $RBOX_BIN) mkfixtures and rbuild for the image.
# --network none: no bridge is made, nothing of the host's network touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
a=$(realpath "$1") b=$(realpath "$2") n=${3:-40}
bin=$(realpath "${RBOX_BIN:-target/debug}")
work=$(mktemp -d /tmp/rbox-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$bin/mkfixtures" busybox-tar "$work/bb.tar" >/dev/null
"$bin/rbuild" import --root "$work/store" "$work/bb.tar" busybox >/dev/null
run() {
  "$1" --root "$work/store" run --rm --network none busybox /bin/true
}
for _ in 1 2; do run "$a"; run "$b"; done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$n"); do
  for which in a b; do
    exe=${!which}
    t0=$(date +%s%N)
    run "$exe"
    t1=$(date +%s%N)
    echo "$which $(( (t1 - t0) / 1000 ))" >>"$work/times"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
stats() {
  grep "^$1 " "$work/times" | cut -d' ' -f2 | sort -n |
    awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
      printf "%.2f %.2f %.2f\n", m/1000, v[1]/1000, v[NR]/1000}'
}
read -r ma mina maxa <<<"$(stats a)"
read -r mb minb maxb <<<"$(stats b)"
echo "A $a: median $ma ms (min $mina, max $maxa), $n runs"
echo "B $b: median $mb ms (min $minb, max $maxb), $n runs"
awk -v a="$ma" -v b="$mb" 'BEGIN {printf "B/A of the medians: %.3f\n", b/a}'
