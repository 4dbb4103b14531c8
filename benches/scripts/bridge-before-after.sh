#!/usr/bin/env bash
# The bridge's cost in two builds of rrun, to tell a change to the bridge
# path from this machine's noise: `rrun run --rm busybox /bin/true` with
# --network none and bridge, for the build in OLD and the one in NEW
# (directories holding rrun; rbuild and mkfixtures are taken from NEW),
# all four interleaved, the order rotating every round: wall clock (N
# runs each, default 40) and CPU time (`perf stat -e task-clock -r 20`
# of rrun's process tree, ROUNDS rounds each, default 15); medians.
# In a network namespace of its own (scripts/in-netns.sh). As root:
#   bash benches/scripts/bridge-before-after.sh OLD NEW [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then exec scripts/in-netns.sh bash "$0" "$@"; fi
old=${1:?usage: bridge-before-after.sh OLD NEW [N] [ROUNDS]}
new=${2:?usage: bridge-before-after.sh OLD NEW [N] [ROUNDS]}
n=${3:-40} r=${4:-15}
command -v perf >/dev/null || { echo "perf is missing (linux-perf)" >&2; exit 1; }
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
"$new/mkfixtures" busybox-tar "$store/bb.tar.zst" >/dev/null
"$new/rbuild" --root "$store" import "$store/bb.tar.zst" busybox >/dev/null
kinds=(old:none old:bridge new:none new:bridge)
bin() { case $1 in old:*) echo "$old/rrun" ;; *) echo "$new/rrun" ;; esac; }
one() { # prints microseconds
  local b s e
  b=$(bin "$1")
  s=$EPOCHREALTIME
  "$b" --root "$store" run --rm --network "${1#*:}" busybox /bin/true
  e=$EPOCHREALTIME
  echo $(((${e/./} - ${s/./})))
}
cpu() { # prints milliseconds
  "$(bin "$1")" --root "$store" run --rm --network "${1#*:}" busybox /bin/true >/dev/null # warm
  perf stat -x, -e task-clock -r 20 "$(bin "$1")" --root "$store" run --rm --network "${1#*:}" busybox /bin/true 2>&1 >/dev/null |
    awk -F, '/task-clock/ {print $1}'
}
for _ in 1 2 3; do for k in "${kinds[@]}"; do one "$k" >/dev/null; done; done
declare -A t c
for i in $(seq "$n"); do
  for j in 0 1 2 3; do k=${kinds[$(((i + j) % 4))]}; t[$k]+="$(one "$k") "; done
done
for i in $(seq "$r"); do
  for j in 0 1 2 3; do k=${kinds[$(((i + j) % 4))]}; c[$k]+="$(cpu "$k") "; done
done
med() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
echo "rrun run --rm busybox /bin/true; wall: $n runs each, CPU: $r x 20 runs each; load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A w p
for k in "${kinds[@]}"; do
  w[$k]=$(printf '%s\n' ${t[$k]} | awk '{print $1/1000}' | med)
  p[$k]=$(printf '%s\n' ${c[$k]} | med)
  echo "  $k: wall median ${w[$k]} ms, CPU median ${p[$k]} ms (rounds: ${c[$k]})"
done
for b in old new; do
  echo "  $b: bridge adds $(awk -v a="${w[$b:bridge]}" -v z="${w[$b:none]}" 'BEGIN {printf "%.2f", a-z}') ms wall, $(awk -v a="${p[$b:bridge]}" -v z="${p[$b:none]}" 'BEGIN {printf "%.2f", a-z}') ms CPU"
done
