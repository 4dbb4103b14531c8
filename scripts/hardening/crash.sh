#!/usr/bin/env bash
# Crash consistency: kill -9 `rbuild import`, `rbuild build` and `rrun run`
# at random points, N times each. After every kill `rbuild fsck` must say
# the store is consistent and the same command must then succeed.
#
# Usage: scripts/hardening/crash.sh [N=50]
# Env:   RBUILD, RRUN (default: target/release/…, else PATH), BASE_TAR (a
#        busybox rootfs tarball; default: made with mkfixtures), WORK (scratch
#        dir; default mktemp -d), BIG_DIR (tree imported as the big layer;
#        default /usr/share/doc), SEED (for $RANDOM).
# Prints one line per kind: kills, how many landed before the command
# finished, and the fsck/next-command results; exits 1 on the first failure.
set -euo pipefail
N=${1:-50}
cd "$(dirname "$0")/../.."
# In a network namespace of its own: containers and RUN steps default to
# rbox's bridge, which this script must not make in the machine's own.
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  exec scripts/in-netns.sh bash "scripts/hardening/crash.sh" "$@"
fi
[ "$(id -u)" = 0 ] || { echo "crash.sh: needs root (rrun, overlayfs)" >&2; exit 1; }
pick() { local v=$1 name=$2; if [ -n "${!v:-}" ]; then echo "${!v}";
  elif [ -x "target/release/$name" ]; then echo "$PWD/target/release/$name";
  else command -v "$name" || { echo "crash.sh: $name not found (cargo build --release --bins)" >&2; exit 1; }; fi; }
RBUILD=$(pick RBUILD rbuild); RRUN=$(pick RRUN rrun)
RANDOM=${SEED:-$$}
WORK=${WORK:-$(mktemp -d)}
STORE=$WORK/store
mkdir -p "$STORE"
cleanup() { "$RRUN" --root "$STORE" rm -f $("$RRUN" --root "$STORE" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
if [ -z "${BASE_TAR:-}" ]; then
  BASE_TAR=$WORK/busybox.tar.zst
  "$(pick MKFIXTURES mkfixtures)" busybox-tar "$BASE_TAR" >/dev/null
fi
# The big layer: many files, so a kill lands mid-unpack.
BIG=$WORK/big.tar.gz
tar -C "$(dirname "${BIG_DIR:-/usr/share/doc}")" -czf "$BIG" "$(basename "${BIG_DIR:-/usr/share/doc}")" 2>/dev/null
rb() { "$RBUILD" --root "$STORE" "$@"; }
rr() { "$RRUN" --root "$STORE" "$@"; }
rb import --change 'CMD ["sh"]' "$BASE_TAR" busybox:latest >/dev/null
# Only this script's cgroups are counted (other rbox users on the host,
# e.g. tests running beside it, create and remove theirs meanwhile): its
# containers' ids end with this store's tag (8 hex digits of its path),
# its builds' RUN steps are rbuild-<pid of a killed build>-….
rr run --name crash-tag busybox true >/dev/null
tag=$(ls "$STORE/containers"); tag=${tag: -8}
rr rm crash-tag >/dev/null
[[ $tag =~ ^[0-9a-f]{8}$ ]] || { echo "crash.sh: cannot tell this store's container tag (got '$tag')" >&2; exit 1; }
build_pids=()
ours() {
  local args=(-name "*$tag") p
  for p in "${build_pids[@]}"; do args+=(-o -name "rbuild-$p-*"); done
  find /sys/fs/cgroup -mindepth 2 -type d -path '*rbox/*' \( "${args[@]}" \) 2>/dev/null | sort
}

fail() { echo "crash.sh: FAIL after kill $i of $kind: $*" >&2; echo "store kept at $STORE" >&2; KEEP=1; exit 1; }
ms() { date +%s%3N; }

check_store() {
  local out
  out=$(rb fsck 2>&1) || fail "fsck exit $?: $out"
  case $out in *": consistent"*) ;; *) fail "fsck: $out" ;; esac
}

# kill_at BINARY ARGS...: run it, SIGKILL it after a random 0..$window ms;
# sets $early=1 when the kill landed before it finished, from its wait
# status (137: killed by SIGKILL), not from kill's: kill -9 of a process
# that already ended but was not yet waited for also succeeds, and counted
# every kill as landed. BINARY must be the program itself, not a shell
# function: $! must be its pid. Then no process of the killed command may
# be left running (its containers die with it: PDEATHSIG).
kill_at() {
  local delay=$(( RANDOM % (window + 1) )) rc=0
  "$@" >/dev/null 2>&1 & local pid=$!
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  if [ "$rc" = 137 ]; then early=1; else early=0; fi
  # Adapt the window: a run that ended before its kill took less than
  # $delay, so later kills draw from that; one killed early widens it by
  # a tenth, so that kills keep reaching the end of a run. (The first
  # run of a kind can be much slower than the rest, e.g. in the v2 guest,
  # where with a fixed window 0 of 5 kills landed.)
  if [ $early = 1 ]; then window=$(( window * 11 / 10 + 1 )); [ $window -le 5000 ] || window=5000
  else window=$delay; [ $window -ge 5 ] || window=5; fi
  [ "$kind" != build ] || build_pids+=("$pid")
  no_survivors "$pid"
}

# The rbox cgroups of what a killed command started: its container's
# (rrun ids are the directory names under containers/) or its RUN steps'
# (rbuild-<pid>-…). All must be empty within 5 s of the kill.
no_survivors() {
  local pid=$1 t procs
  for t in $(seq 50); do
    procs=$( { for id in $(ls "$STORE/containers" 2>/dev/null); do
                 cat /sys/fs/cgroup/*/rbox/"$id"/cgroup.procs /sys/fs/cgroup/rbox/"$id"/cgroup.procs; done
               cat /sys/fs/cgroup/*/rbox/rbuild-"$pid"-*/cgroup.procs /sys/fs/cgroup/rbox/rbuild-"$pid"-*/cgroup.procs
             } 2>/dev/null | sort -u | tr '\n' ' ' || true)
    [ -n "$procs" ] || return 0
    sleep 0.1
  done
  fail "processes of the killed $kind (pid $pid) still running 5 s later: $procs"
}

# calibrate [-n K] CMD...: the window is 1.5 times one clean run, in ms:
# the fastest of K runs, for a command whose first run is slower than the
# rest (cold caches). The half on top lets kills reach the commit at the
# end of runs slower than the calibration (a growing store, a busy host:
# with the bare time, 50 of 50 build kills landed early, none in the
# end). At most 5000: a cap of 999 kept every kill away from the end of
# an import that takes longer (a debug build's).
calibrate() { local t0 k=1 w; [ "$1" != -n ] || { k=$2; shift 2; }
  window=5000; for _ in $(seq "$k"); do t0=$(ms); "$@" >/dev/null 2>&1 || fail "calibration run failed: $*"
    w=$(( ($(ms) - t0) * 3 / 2 )); [ $w -ge $window ] || window=$w; done
  [ $window -ge 5 ] || window=5; window0=$window; }

# Kills per kind: N, and more (up to 3N) while none has landed before its
# command finished. A kind where none lands tested nothing and fails; with
# CI's 5 kills that happened by chance now and then.
more() { [ "$i" -lt "$N" ] || { [ "$landed" = 0 ] && [ "$i" -lt $((3 * N)) ]; }; }
report() { [ "$landed" -gt 0 ] || fail "none of $i kills landed before the command finished (window ${window} ms at the end): nothing was tested"
  echo "$kind: $i kills ($landed before completion, window ${window0} ms, ${window} ms at the end); fsck consistent and the next $kind succeeded after each"; }

# --- rbuild import: the layer is removed (rmi + gc) before each try, so
# every kill can land in the unpack, the blob write or the commit.
kind=import i=0; landed=0
calibrate rb import "$BIG" big:cal; rb rmi big:cal >/dev/null; rb gc >/dev/null
while more; do i=$((i + 1))
  kill_at "$RBUILD" --root "$STORE" import "$BIG" "big:k$i"; landed=$((landed + early))
  check_store
  rb import "$BIG" "big:k$i" >/dev/null 2>&1 || fail "next import failed: $(rb import "$BIG" "big:k$i" 2>&1)"
  check_store
  rb rmi "big:k$i" >/dev/null; rb gc >/dev/null
done
report

# --- rbuild build: a RUN step with its own nonce (no cache hit) that
# writes 20 MB, then a COPY.
kind=build i=0; landed=0
ctx=$WORK/ctx; mkdir -p "$ctx"; head -c 4M /dev/urandom > "$ctx/blob"
mkfile() { printf 'FROM busybox\nRUN echo %s > /nonce && dd if=/dev/zero of=/big bs=1M count=20 2>/dev/null\nCOPY blob /blob\n' "$1" > "$ctx/Containerfile"; }
mkfile cal; calibrate rb build -t b:cal "$ctx"
while more; do i=$((i + 1))
  mkfile "$RANDOM-$i"
  kill_at "$RBUILD" --root "$STORE" build -t "b:k$i" "$ctx"; landed=$((landed + early))
  check_store
  rb build -t "b:k$i" "$ctx" >/dev/null 2>&1 || fail "next build failed: $(rb build -t "b:k$i" "$ctx" 2>&1 | tail -3)"
  check_store
done
report

# --- rrun run: killed while it starts, runs or tears down.
kind=run i=0; landed=0
calibrate -n 3 rr run --rm busybox sh -c 'dd if=/dev/zero of=/x bs=1M count=10 2>/dev/null'
while more; do i=$((i + 1))
  kill_at "$RRUN" --root "$STORE" run --rm busybox sh -c 'dd if=/dev/zero of=/x bs=1M count=10 2>/dev/null'; landed=$((landed + early))
  check_store
  out=$(rr run --rm busybox echo alive 2>&1) || fail "next run failed: $out"
  [ "$out" = alive ] || fail "next run printed: $out"
done
report
# What the killed runs left: containers `rrun ps -a` still lists (a killed
# rrun cannot remove its own), and their mounts once removed.
left=$(rr ps -aq | wc -l)
rr rm -f $(rr ps -aq) >/dev/null 2>&1 || true
mounts=$(grep -c "$STORE" /proc/self/mountinfo || true)
# A killed rrun or rbuild cannot remove its cgroup either: the next run's
# or build's reaper does (one ran after every kill above), and rm -f now.
sleep 1
cg_left=$(ours | wc -l)
echo "after $i killed runs: $left containers listed by ps -a (removed with rm -f), $mounts mounts and $cg_left new rbox cgroups left (of killed runs and builds)"
[ "$mounts" = 0 ] || fail "mounts left: $(grep "$STORE" /proc/self/mountinfo)"
[ "$cg_left" = 0 ] || fail "cgroups left: $(ours)"
check_store
