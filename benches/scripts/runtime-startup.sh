#!/usr/bin/env bash
# rbox-runtime against runc and crun: `RUNTIME run` of /bin/true in one
# busybox bundle (`runc spec` with terminal off, the fixtures' busybox
# rootfs), N runs each (default 50) taken round-robin after 3 warm-up
# runs each, twice: with a short pause (0.2 s) before every run, and
# back to back. Then, with --clients, the same through `podman run --rm`
# and `ctr run --rm` (a private containerd) with each runtime underneath.
# Prints medians and ratios to rbox-runtime. As root:
#   bash benches/scripts/runtime-startup.sh [N] [--clients]
# Uses target/release (or $RBOX_BIN): rbox-runtime (statically linked by
# scripts/build-release.sh), mkfixtures, rbuild.
#
# Everything runs in a private mount namespace (unshare -m): crun refuses
# this host's hybrid cgroup layout unless the empty cgroup2 at
# /sys/fs/cgroup/unified is gone, so it is unmounted there, for every
# runtime alike; tmpfs mounts over /run and /var/lib/containers keep
# containerd's and Podman's files off the host. Each container gets a new
# network namespace (the default spec's): no host network is touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${RBOX_RTBENCH_NS:-}" != 1 ]; then
  exec env RBOX_RTBENCH_NS=1 unshare -m --propagation private bash "$0" "$@"
fi
n=50 clients=0
for a in "$@"; do
  case $a in
    --clients) clients=1 ;;
    *) n=$a ;;
  esac
done
bin=$(realpath "${RBOX_BIN:-target/release}")
rt_rbox=$bin/rbox-runtime
rt_runc=$(command -v runc)
rt_crun=$(command -v crun)
umount /sys/fs/cgroup/unified 2>/dev/null || true
work=$(mktemp -d /tmp/rbox-rtbench.XXXXXX)
chmod 0755 "$work"
cleanup() {
  set +e
  for rt in rbox runc crun; do
    for id in $(ls "$work/state-$rt" 2>/dev/null); do
      eval "\"\$rt_$rt\"" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1
    done
  done
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
  # The parent groups containerd (namespace rtbench) and Podman
  # (cgroupfs) leave; rmdir only removes them when empty.
  for h in /sys/fs/cgroup/*/; do
    rmdir "$h/rtbench" "$h/libpod_parent/conmon" "$h/libpod_parent" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bundle/rootfs"
"$bin/mkfixtures" busybox-tar "$work/bb.tar" >/dev/null
tar -C "$work/bundle/rootfs" -xf "$work/bb.tar"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/true"]' \
  "$work/bundle/config.json" >"$work/bundle/c.json"
mv "$work/bundle/c.json" "$work/bundle/config.json"

us() { # the wall time of "$@" in microseconds
  local s=$EPOCHREALTIME
  "$@" >/dev/null
  local e=$EPOCHREALTIME
  echo $(( ${e/./} - ${s/./} ))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
seq_id=0
run_rt() { # NAME: one `run` of the bundle through that runtime
  seq_id=$((seq_id + 1))
  local rt; eval "rt=\$rt_$1"
  "$rt" --root "$work/state-$1" run --bundle "$work/bundle" "b$$-$seq_id"
}

# bench LABEL PAUSE NAME...: N rounds, each name once a round, the order
# rotated every round; prints one line per name: median ms and ratio.
bench() {
  local label=$1 pause=$2; shift 2
  local names=("$@") k=${#@}
  declare -A t
  for name in "${names[@]}"; do
    for _ in 1 2 3; do "one_$name" >/dev/null; done
    t[$name]=""
  done
  for i in $(seq "$n"); do
    for j in $(seq 0 $((k - 1))); do
      local name=${names[$(( (i + j) % k ))]}
      [ "$pause" = 0 ] || sleep "$pause"
      t[$name]+="$(us "one_$name") "
    done
  done
  local base
  base=$(printf '%s\n' ${t[${names[0]}]} | median)
  echo "$label ($n runs each, load $(cut -d' ' -f1-3 /proc/loadavg))"
  for name in "${names[@]}"; do
    local m
    m=$(printf '%s\n' ${t[$name]} | median)
    printf '  %-28s median %8s ms  x%s\n' "$name" "$m" \
      "$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2f", a/b}')"
  done
}

one_rbox-runtime() { run_rt rbox; }
one_runc() { run_rt runc; }
one_crun() { run_rt crun; }
echo "rbox-runtime: $rt_rbox ($(file -b "$rt_rbox" | grep -o 'static[a-z-]* linked' || echo dynamic))"
echo "runc: $($rt_runc --version | head -1); crun: $($rt_crun --version | head -1)"
bench "RUNTIME run, /bin/true in busybox, 0.2 s pause before each run" 0.2 rbox-runtime runc crun
bench "RUNTIME run, /bin/true in busybox, back to back" 0 rbox-runtime runc crun

[ "$clients" = 1 ] || exit 0

# The clients: a busybox image in OCI archive form, from the fixture.
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers
"$bin/rbuild" --root "$work/store" import "$work/bb.tar" busybox >/dev/null
"$bin/rbuild" --root "$work/store" save --format docker-archive -o "$work/bb-oci.tar" busybox >/dev/null
img=docker.io/library/busybox:latest

# Podman: a private store and config (as runner/tests/interop_podman.rs).
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/events.log"
tmp_dir = "$work/ptmp"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/graph"
runroot = "$work/prun"
EOF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
podman load -q -i "$work/bb-oci.tar" >/dev/null
podman tag "$(podman images -q | head -1)" "$img" 2>/dev/null || true
pod() { podman --runtime "$1" run --rm --security-opt seccomp=unconfined "$img" /bin/true; }
one_podman+rbox-runtime() { pod "$rt_rbox"; }
one_podman+runc() { pod "$rt_runc"; }
one_podman+crun() { pod "$rt_crun"; }
bench "podman run --rm, 0.2 s pause before each run" 0.2 podman+rbox-runtime podman+runc podman+crun
podman rm -af -t 0 >/dev/null 2>&1 || true
podman system reset -f >/dev/null 2>&1 || true

# containerd: a private daemon (as runner/tests/interop_containerd.rs).
mkdir -p /run/containerd
cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/ctd-root"
state = "$work/ctd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[debug]
  address = "$work/debug.sock"
EOF
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
ctr_() { ctr -a "$work/containerd.sock" -n rtbench "$@"; }
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ image import "$work/bb-oci.tar" >/dev/null
cid=0
ctrrun() { cid=$((cid + 1)); ctr_ run --rm --runc-binary "$1" "$img" "c$$-$cid" /bin/true; }
one_ctr+rbox-runtime() { ctrrun "$rt_rbox"; }
one_ctr+runc() { ctrrun "$rt_runc"; }
one_ctr+crun() { ctrrun "$rt_crun"; }
bench "ctr run --rm, 0.2 s pause before each run" 0.2 ctr+rbox-runtime ctr+runc ctr+crun
