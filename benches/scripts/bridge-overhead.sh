#!/usr/bin/env bash
# What the bridge adds to a container start: `rrun run --rm busybox
# /bin/true` with --network bridge against --network none, and `podman
# run --rm` of the same rootfs on podman's default bridge network,
# interleaved (the order rotates each round), N runs each (default 50)
# after 5 warm-up runs of each, medians printed.
# Runs in a network and mount namespace of its own (scripts/in-netns.sh),
# so the bridges and rules it makes never touch the machine's network. As
# root:
#   bash benches/scripts/bridge-overhead.sh [N]
# Uses target/release (or $RBOX_BIN): rrun, rbuild, mkfixtures (bash
# scripts/build-release.sh), and a store in a temp dir with the busybox
# fixture image.
#
# Podman (Debian's 4.3 with crun, benches/scripts/install-peers.sh) runs
# privately, as runner/tests/interop_podman.rs does: its own
# containers.conf (the ulimits it needs here, cgroupfs, file events),
# storage.conf (a fresh graph root and run root in the temp dir) and a
# tmpfs over /var/lib/containers. Its default network "podman" is the CNI
# bridge Debian ships (/etc/cni/net.d/87-podman-bridge.conflist: bridge
# cni-podman0 with NAT, portmap, firewall, tuning; no netavark on
# Debian 12), copied to a private network_config_dir with host-local's
# leases in the temp dir; its iptables(-nft) rules land in this namespace.
# crun refuses the hybrid cgroup layout, so the empty cgroup2 at
# /sys/fs/cgroup/unified is unmounted in this script's mount namespace
# (rrun uses its v1 driver either way). PODMAN=0 leaves podman out.
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

pod=${PODMAN:-1}
if [ "$pod" = 1 ] && ! command -v podman >/dev/null; then
  echo "podman is not installed (benches/scripts/install-peers.sh): left out" >&2
  pod=0
fi
if [ "$pod" = 1 ]; then
  if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
  p=$store/podman
  mkdir -p "$p/net" "$p/tmp" "$p/cni"
  cat >"$p/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$p/events.log"
tmp_dir = "$p/tmp"
volume_path = "$p/volumes"
[network]
network_backend = "cni"
network_config_dir = "$p/net"
CONF
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' \
    "$p" "$p" >"$p/storage.conf"
  sed "s|\"type\": \"host-local\",|\"type\": \"host-local\", \"dataDir\": \"$p/cni\",|" \
    /etc/cni/net.d/87-podman-bridge.conflist >"$p/net/87-podman-bridge.conflist"
  # Podman's blob-info cache, libcni's result cache and crun's state root
  # are fixed paths: tmpfs over each here (mount points that were missing
  # are made and removed again).
  made=()
  for d in /var/lib/containers /var/lib/cni /run/crun; do
    if [ ! -e "$d" ]; then mkdir -p "$d"; made+=("$d"); fi
    mount -t tmpfs -o mode=0700 tmpfs "$d"
  done
  export CONTAINERS_CONF=$p/containers.conf CONTAINERS_STORAGE_CONF=$p/storage.conf
  podman_done() {
    podman rm -af -t 0 >/dev/null 2>&1 || true
    podman system reset -f >/dev/null 2>&1 || true
    for d in /var/lib/containers /var/lib/cni /run/crun; do umount "$d" || true; done
    for d in "${made[@]}"; do rmdir "$d" || true; done
    rm -rf "$store"
  }
  trap podman_done EXIT
  "$bin/mkfixtures" busybox-tar "$p/bb.tar" >/dev/null
  podman import -q "$p/bb.tar" rbox-bench-busybox >/dev/null
  addr=$(podman run --rm localhost/rbox-bench-busybox ip -o -4 addr show eth0)
  case $addr in
    *10.88.*) echo "podman's container: $addr" ;;
    *) echo "podman's container is not on its bridge: $addr" >&2; exit 1 ;;
  esac
fi

one() { # prints microseconds
  local s=$EPOCHREALTIME
  case $1 in
    podman) podman run --rm localhost/rbox-bench-busybox /bin/true ;;
    *) "$bin/rrun" --root "$store" run --rm --network "$1" busybox /bin/true ;;
  esac
  local e=$EPOCHREALTIME
  echo $(( (${e/./} - ${s/./}) ))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
minimum() { sort -n | head -1 | awk '{printf "%.2f", $1/1000}'; }
kinds=(none bridge)
if [ "$pod" = 1 ]; then kinds+=(podman); fi
for _ in 1 2 3 4 5; do for k in "${kinds[@]}"; do one "$k" >/dev/null; done; done
declare -A t
for i in $(seq "$n"); do
  k=${#kinds[@]}
  for j in $(seq 0 $((k - 1))); do
    kind=${kinds[$(((i + j) % k))]}
    t[$kind]+="$(one "$kind") "
  done
done
med() { printf '%s\n' ${t[$1]} | median; }
least() { printf '%s\n' ${t[$1]} | minimum; }
mn=$(med none)
mb=$(med bridge)
echo "rrun run --rm busybox /bin/true, $n runs each, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  --network none:   median $mn ms (min $(least none))"
echo "  --network bridge: median $mb ms (min $(least bridge))"
echo "  bridge adds:      $(awk -v a="$mb" -v b="$mn" 'BEGIN {printf "%.2f", a-b}') ms"
# CPU time, steadier than wall clock on a loaded machine: perf stat's
# task-clock of rrun's whole process tree (the container's included; not
# the kernel's worker threads), 5 rounds of 20 runs of each, interleaved;
# the median of the round means.
if command -v perf >/dev/null; then
  cpu() {
    perf stat -x, -e task-clock -r 20 "$bin/rrun" --root "$store" run --rm --network "$1" busybox /bin/true 2>&1 >/dev/null |
      awk -F, '/task-clock/ {print $1}'
  }
  declare -A c
  for i in 1 2 3 4 5; do
    if ((i % 2)); then c[none]+="$(cpu none) "; c[bridge]+="$(cpu bridge) "
    else c[bridge]+="$(cpu bridge) "; c[none]+="$(cpu none) "; fi
  done
  cmed() { printf '%s\n' ${c[$1]} | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[(NR+1)/2]}'; }
  cn=$(cmed none) cb=$(cmed bridge)
  echo "CPU time (perf stat task-clock), 5 x 20 runs each: none $cn ms, bridge $cb ms, bridge adds $(awk -v a="$cb" -v b="$cn" 'BEGIN {printf "%.2f", a-b}') ms"
fi
if [ "$pod" = 1 ]; then
  mp=$(med podman)
  echo "podman run --rm (crun, default CNI bridge): median $mp ms (min $(least podman))"
  echo "  rrun bridge / podman bridge: $(awk -v a="$mb" -v b="$mp" 'BEGIN {printf "%.3f", a/b}')"
fi
