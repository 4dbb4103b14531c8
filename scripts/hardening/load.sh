#!/usr/bin/env bash
# Load: SEQ sequential `rrun run --rm busybox true`, then CONC-way
# concurrent runs (ROUNDS rounds) with BUILDS builds beside them, then the
# start latency of one container alone against one among 16 started at
# once. Counts mounts, rbox cgroups, container state dirs, store tmp dirs
# and open fds of this shell before and after: all must be back where
# they started. Not in CI (minutes); prints the figures for the README.
#
# Usage: scripts/hardening/load.sh [SEQ=1000] [CONC=8] [ROUNDS=125] [BUILDS=2]
# Env:   RBUILD, RRUN, MKFIXTURES (default target/release/…, else PATH),
#        WORK (scratch dir, default mktemp -d).
set -euo pipefail
SEQ=${1:-1000}; CONC=${2:-8}; ROUNDS=${3:-125}; BUILDS=${4:-2}
cd "$(dirname "$0")/../.."
# In a network namespace of its own: containers and RUN steps default to
# rbox's bridge, which this script must not make in the machine's own.
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  exec scripts/in-netns.sh bash "scripts/hardening/load.sh" "$@"
fi
[ "$(id -u)" = 0 ] || { echo "load.sh: needs root" >&2; exit 1; }
pick() { local v=$1 name=$2; if [ -n "${!v:-}" ]; then echo "${!v}";
  elif [ -x "target/release/$name" ]; then echo "$PWD/target/release/$name";
  else command -v "$name" || { echo "load.sh: $name not found (bash scripts/build-release.sh)" >&2; exit 1; }; fi; }
RBUILD=$(pick RBUILD rbuild); RRUN=$(pick RRUN rrun); MKF=$(pick MKFIXTURES mkfixtures)
WORK=${WORK:-$(mktemp -d)}
STORE=$WORK/store
mkdir -p "$STORE"
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
rb() { "$RBUILD" --root "$STORE" "$@"; }
rr() { "$RRUN" --root "$STORE" "$@"; }
"$MKF" busybox-tar "$WORK/busybox.tar.zst" >/dev/null
rb import --change 'CMD ["sh"]' "$WORK/busybox.tar.zst" busybox:latest >/dev/null
now() { date +%s.%N; }

counts() {
  local mounts cg state tmp fds
  # Mounts under this store only: other rbox users on the host come and go.
  mounts=$(grep -c "$STORE" /proc/self/mountinfo || true)
  cg=$(leaked_cgroups | wc -l)
  state=$(find "$STORE/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  tmp=$(find "$STORE/tmp" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l)
  fds=$(ls /proc/$$/fd | wc -l)
  echo "mounts=$mounts rbox-cgroups=$cg container-dirs=$state tmp-entries=$tmp shell-fds=$fds"
}
# rbox cgroups (rbox/<container id>) not present before the load and
# still there 3 s after it. Other rbox users on the host (test suites) may
# add some of their own meanwhile: a non-zero count needs a look.
find /sys/fs/cgroup -type d -path '*rbox/*' 2>/dev/null | sort > "$WORK/cg.before"
leaked_cgroups() { find /sys/fs/cgroup -type d -path '*rbox/*' 2>/dev/null | sort | comm -13 "$WORK/cg.before" - || true; }
rr run --rm busybox true   # warm the page cache and the unpacked layer
before=$(counts)
echo "before: $before"

sfails=0
t0=$(now)
for i in $(seq 1 "$SEQ"); do rr run --rm busybox true || sfails=$((sfails + 1)); done
t1=$(now)
echo "sequential: $SEQ runs in $(echo "$t1 - $t0" | bc) s = $(echo "scale=1; $SEQ / ($t1 - $t0)" | bc) containers/s; $sfails failed"

# Two builds beside the concurrent runs (each RUN step is a container too).
ctx=$WORK/ctx; mkdir -p "$ctx"
printf 'FROM busybox\nRUN echo %s > /n && i=0; while [ $i -lt 50 ]; do echo $i >> /log; i=$((i+1)); done\nRUN sleep 1\n' "$RANDOM" > "$ctx/Containerfile"
bpids=()
for b in $(seq 1 "$BUILDS"); do
  # A new nonce per build (a failed edit would make it a cache hit: no RUN
  # container beside the runs).
  (for k in 1 2 3; do sed -i "1,2s/echo [0-9a-z-]* >/echo $b-$k-$RANDOM >/" "$ctx/Containerfile" || exit 1
     rb build -t "load$b:$k" "$ctx" >/dev/null 2>&1 || { echo "load.sh: build $b/$k failed" >&2; exit 1; }; done) &
  bpids+=($!)
done
fails=0
t0=$(now)
for r in $(seq 1 "$ROUNDS"); do
  pids=()
  for c in $(seq 1 "$CONC"); do rr run --rm busybox true & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
done
t1=$(now)
bfail=0; for p in "${bpids[@]}"; do wait "$p" || bfail=$((bfail + 1)); done
n=$((CONC * ROUNDS))
echo "concurrent: $n runs ($CONC at a time, $BUILDS builds beside) in $(echo "$t1 - $t0" | bc) s = $(echo "scale=1; $n / ($t1 - $t0)" | bc) containers/s; $fails runs and $bfail builds failed"

# Start latency: `rrun run --rm busybox true` end to end, alone (median of
# 10) against each of 16 started at once (median and max over 5 rounds).
# On a machine with fewer cores than 16 part of the slowdown is plain CPU:
# with C the CPU time of one start (rrun and its container: user + sys of
# the process tree), the last of 16 cannot end before 16 * C / cores even
# with no lock at all. max / that floor near 1 means no serialisation.
# A failed run is counted (a line in lat.failed) and fails the script: it
# only printed a warning, and its short time went into the figures.
lat() { local a b; a=$(now); rr run --rm busybox true || { echo "load.sh: a latency run failed" >&2; echo x >> "$WORK/lat.failed"; }; b=$(now); echo "$b - $a" | bc; }
alone=$(for i in $(seq 10); do lat; done | sort -n | sed -n 5p)
# `times` in a subshell: its children's user and sys time (getrusage).
cpu=$( (for i in $(seq 20); do rr run --rm busybox true || echo x >> "$WORK/lat.failed"; done; times) | tail -n 1 \
  | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.4f", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) / 20 }')
for r in $(seq 5); do
  for i in $(seq 16); do lat > "$WORK/lat.$r.$i" & done; wait
done
burst=$(cat "$WORK"/lat.*.* | sort -n)
med=$(echo "$burst" | sed -n 40p); max=$(echo "$burst" | tail -1)
floor=$(echo "scale=4; 16 * $cpu / $(nproc)" | bc)
echo "latency: alone median ${alone} s; among 16 at once median ${med} s, max ${max} s (median ratio $(echo "scale=2; $med / $alone" | bc))"
echo "latency: CPU of one start ${cpu} s (mean of 20; getrusage of rrun + container); 16 on $(nproc) cores need ${floor} s of it at least: max / floor $(echo "scale=2; $max / $floor" | bc)"

sleep 3
after=$(counts)
echo "after:  $after"
[ "$before" = "$after" ] || { echo "load.sh: LEAK: before $before / after $after" >&2; exit 1; }
lfails=0; [ ! -f "$WORK/lat.failed" ] || lfails=$(wc -l < "$WORK/lat.failed")
[ "$sfails" = 0 ] && [ "$fails" = 0 ] && [ "$bfail" = 0 ] && [ "$lfails" = 0 ] || { echo "load.sh: $sfails sequential, $fails concurrent, $lfails latency runs and $bfail builds failed" >&2; exit 1; }
echo "load.sh: nothing leaked"
