#!/usr/bin/env bash
# image-path.sh: the real-world image path (gzip and zstd layers, registry
# pulls), rbox against its peers on the same input.
#
#   bash benches/scripts/image-path.sh [N]        # as root; N timed runs per tool (default 5)
#
# Input: the synthetic distro-like 3-layer image (`mkfixtures synthetic`:
# a base tree, /usr/include headers, a clean-up layer of whiteouts; ≈200 MB
# of files, ≈10k entries) as two OCI layouts, one with gzip layers and one
# with zstd layers (same tars, same diff ids), pushed with skopeo to
# Debian's docker-registry on 127.0.0.1 (storage in the scratch dir).
#
# Rows (every row states its input format; compare rows of one format):
#   load gzip   `rbuild load -i oci:DIR:v1` (fresh store)  vs `umoci unpack` of the same layout
#   load zstd   `rbuild load` of the zstd layout (umoci reads no zstd): also the "from disk"
#               half of the zstd pull target (pull ≤ 1.2× the longer of this and skopeo's download)
#   pull gzip   `rbuild pull` (fresh store) vs `podman pull` (fresh private store) vs `skopeo copy` to a dir (download only)
#   pull zstd   the same three on the zstd image
#   pull+run    `rrun run --rm REG/bb:gz true` on an empty store vs `podman run --rm` (runc) on an
#               empty store vs `docker run --rm` (a private dockerd, runc) vs `ctr image pull`
#               then `ctr run --rm` (a private containerd, runc): the busybox fixture image,
#               gzip, from the same registry. docker's and containerd's stores are emptied
#               between runs (`docker rmi`, `ctr image rm --sync`), outside the timing.
#   peak RSS    /usr/bin/time -v of rbuild pull and load (one run each, gzip and zstd), and of
#               pull and load of a 1 GB synthetic gzip image (`mkfixtures synthetic
#               --total-bytes 1000000000`): memory is bounded by buffers, not by layer size.
#               RBOX_IMGPATH_BIG=0 skips the 1 GB image (it needs ≈4 GB of disk for a while).
#
# Runs itself inside scripts/in-netns.sh (a private network and mount
# namespace; the registry listens on that namespace's loopback).
# Method: everything is written to a journaled ext4 filesystem (data=ordered)
# in a sparse loop image under $RBOX_BENCH_DIR (default /var/tmp/rbox-imgpath),
# removed at the end. Runs are interleaved round-robin (tool A, B, C, A, ...);
# `sync` before each; inputs warm (read once). Times are wall clock of the
# command; podman's are taken inside its private mount namespace (tmpfs over
# /var/lib/containers for its blob-info cache, containers.conf and
# storage.conf in the scratch dir), so unshare's setup is not counted.
# Medians of N; the machine may be shared: quote ratios within one run.
#
# RBOX_IMGPATH_SMALL=1: the small synthetic image (a few MB), to try the script.
# The private dockerd (its own --data-root, --exec-root, --pidfile, socket;
# no bridge, no iptables; the loopback registry insecure) and containerd
# (own root, state, sockets; CRI off) run in this script's mount namespace
# with tmpfs over /run/containerd, /run/docker and /etc/docker, where they
# write whatever their roots say: the machine's own daemons are never seen.
# Binaries: $RBOX_BIN (default target/release) must hold rbuild, rrun and
# mkfixtures: cargo build --release -p builder --bin rbuild -p runner --bin rrun -p fixtures --bin mkfixtures
# Peers: docker-registry skopeo umoci podman runc dockerd docker containerd ctr (benches/scripts/install-peers.sh
# and apt-get install docker-registry).
set -euo pipefail

SELF=$(realpath "$0")
cd "$(dirname "$SELF")/../.."
# A network namespace of its own (lo only): the registry, the pulls and the
# containers stay off the machine's network, as in the tests.
[ "${RBOX_IN_NETNS:-}" = 1 ] || exec scripts/in-netns.sh bash "$SELF" "$@"
N=${1:-5}
BIN=$(realpath "${RBOX_BIN:-target/release}")
BASE=${RBOX_BENCH_DIR:-/var/tmp/rbox-imgpath}

[ "$(id -u)" = 0 ] || { echo "image-path.sh: run as root (unpacking keeps owners; podman and the loop mount need it)" >&2; exit 1; }
for t in "$BIN/rbuild" "$BIN/rrun" "$BIN/mkfixtures"; do
    [ -x "$t" ] || { echo "image-path.sh: $t missing (see the build command at the top)" >&2; exit 1; }
done
for t in docker-registry skopeo umoci podman runc dockerd docker containerd ctr /usr/bin/time mkfs.ext4 unshare; do
    command -v "$t" >/dev/null || { echo "image-path.sh: $t is not installed (benches/scripts/install-peers.sh; apt-get install docker-registry)" >&2; exit 1; }
done

mkdir -p "$BASE"
MNT=$BASE/mnt
IMG=$BASE/ext4.img
REG_PID=
MADE_VLC=
DOCKERD_PID=
CONTAINERD_PID=
MADE_RUN_DIRS=()
CG=rbox-imgpath-$$
cleanup() {
    set +e
    [ -n "$DOCKERD_PID" ] && kill "$DOCKERD_PID" 2>/dev/null && wait "$DOCKERD_PID" 2>/dev/null
    [ -n "$CONTAINERD_PID" ] && kill "$CONTAINERD_PID" 2>/dev/null && wait "$CONTAINERD_PID" 2>/dev/null
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    for d in /run/containerd /run/docker /etc/docker; do mountpoint -q "$d" && umount -l "$d"; done
    for d in "${MADE_RUN_DIRS[@]}"; do rmdir "$d"; done
    for h in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/*/"$CG"-docker /sys/fs/cgroup/"$CG" /sys/fs/cgroup/"$CG"-docker; do
        [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    mountpoint -q "$MNT" && umount "$MNT"
    rm -f "$IMG"
    rmdir "$MNT" 2>/dev/null || true
    [ -n "$MADE_VLC" ] && rmdir /var/lib/containers 2>/dev/null || true
    for h in /sys/fs/cgroup/*/libpod_parent; do rmdir "$h"/conmon "$h" 2>/dev/null || true; done
}
trap cleanup EXIT
mkdir -p "$MNT"
truncate -s 8G "$IMG"
mkfs.ext4 -q -F -O has_journal "$IMG"
mount -o loop,data=ordered "$IMG" "$MNT"
W=$MNT/work
mkdir -p "$W"

# --- input: the synthetic image, gzip and zstd layouts ---------------------
for c in gzip zstd; do
    "$BIN/mkfixtures" synthetic "$W/synth-$c" ${RBOX_IMGPATH_SMALL:+--small} --compression "$c" --oci-layout v1 >/dev/null
done
"$BIN/mkfixtures" busybox-tar "$W/busybox.tar.zst" >/dev/null
BIG=${RBOX_IMGPATH_BIG:-1}
[ -n "${RBOX_IMGPATH_SMALL:-}" ] && BIG=0
if [ "$BIG" = 1 ]; then
    "$BIN/mkfixtures" synthetic "$W/synth-1g" --total-bytes 1000000000 --compression gzip --oci-layout v1 >/dev/null
    rm -f "$W"/synth-1g/layer-*
fi

# --- Debian's docker-registry on a free loopback port ----------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: $REG
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$W/synth-gzip/oci:v1" "docker://$REG/synth:gz"
skopeo copy -q --dest-tls-verify=false "oci:$W/synth-zstd/oci:v1" "docker://$REG/synth:zst"
"$BIN/rbuild" --root "$W/bbstore" import "$W/busybox.tar.zst" bb >/dev/null
"$BIN/rbuild" --root "$W/bbstore" push -q --compression gzip bb "$REG/bb:gz"

if [ "$BIG" = 1 ]; then
    skopeo copy -q --dest-tls-verify=false "oci:$W/synth-1g/oci:v1" "docker://$REG/big:gz"
fi

# Inputs warm, read after the 1 GB image was made (which could evict them).
cat "$W"/synth-gzip/oci/blobs/sha256/* "$W"/synth-zstd/oci/blobs/sha256/* > /dev/null

# --- a private containerd and dockerd (this script's mount namespace) -------
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || { echo "image-path.sh: not in a private mount namespace" >&2; exit 1; }
for d in /run/containerd /run/docker; do
    [ -d "$d" ] || { mkdir -p "$d"; MADE_RUN_DIRS+=("$d"); }
done
mount -t tmpfs -o mode=0711 tmpfs /run/containerd
mount -t tmpfs -o mode=0700 tmpfs /run/docker
mount -t tmpfs -o mode=0755 tmpfs /etc/docker
CD=$W/containerd
mkdir -p "$CD"
printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/containerd.sock"\n[ttrpc]\n  address = "%s/containerd.sock.ttrpc"\n[debug]\n  address = "%s/debug.sock"\n' \
    "$CD" "$CD" "$CD" "$CD" "$CD" > "$CD/config.toml"
containerd --config "$CD/config.toml" >"$CD/log" 2>&1 &
CONTAINERD_PID=$!
ctr_() { ctr -a "$CD/containerd.sock" -n "$CG" "$@"; }
for _ in $(seq 150); do [ -S "$CD/containerd.sock" ] && ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ version >/dev/null || { cat "$CD/log" >&2; exit 1; }
DD=$W/docker
mkdir -p "$DD"
dockerd --data-root="$DD/data" --exec-root="$DD/exec" --pidfile="$DD/docker.pid" \
    --host="unix://$DD/docker.sock" --insecure-registry="$REG" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent="$CG-docker" \
    >"$DD/log" 2>&1 &
DOCKERD_PID=$!
docker_() { DOCKER_CONFIG=$DD/cli docker --host "unix://$DD/docker.sock" "$@"; }
for _ in $(seq 300); do [ -S "$DD/docker.sock" ] && docker_ version >/dev/null 2>&1 && break; sleep 0.2; done
docker_ version >/dev/null || { cat "$DD/log" >&2; exit 1; }

# --- podman, private ----------------------------------------------------------
[ -d /var/lib/containers ] || { mkdir -p /var/lib/containers; MADE_VLC=1; }
cat > "$W/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/podman-events.log"
tmp_dir = "$W/podman-tmp"
runtime = "runc"
EOF
# podman_ms DIR ARGS...: podman ARGS with a fresh store in DIR; prints ms.
podman_ms() {
    local d=$1; shift
    mkdir -p "$d"
    printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' "$d" "$d" > "$d/storage.conf"
    CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf \
        unshare --mount --propagation private sh -c '
            mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers || exit 99
            s=$(date +%s%N); podman "$@" >/dev/null 2>"$0.err" || { cat "$0.err" >&2; exit 1; }
            e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
            podman system reset -f >/dev/null 2>&1' "$d/podman" "$@"
}

# ms CMD...: wall clock of CMD in ms (stdout and stderr to $W/last.log).
ms() {
    local s e
    s=$(date +%s%N)
    "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; return 1; }
    e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
}

# ctr image pull, then ctr run --rm (runc, containerd's default).
ctr_pull_run() {
    ctr_ image pull --plain-http "$REG/bb:gz" && ctr_ run --rm "$REG/bb:gz" "bench-$RANDOM" true
}

declare -A T
record() { T[$1]="${T[$1]:-} $2"; }
fresh() { rm -rf "$W/run"; mkdir -p "$W/run"; sync; }

TOOLS=(load-gz-rbox load-gz-umoci load-zst-rbox
       pull-gz-rbox pull-gz-podman pull-gz-skopeo
       pull-zst-rbox pull-zst-podman pull-zst-skopeo
       run-gz-rrun run-gz-podman run-gz-docker run-gz-ctr)
one() {
    local r=$W/run
    case $1 in
        load-gz-rbox)    ms "$BIN/rbuild" --root "$r/s" load -q -i "oci:$W/synth-gzip/oci:v1" -t synth:gz ;;
        load-gz-umoci)   ms umoci unpack --image "$W/synth-gzip/oci:v1" "$r/bundle" ;;
        load-zst-rbox)   ms "$BIN/rbuild" --root "$r/s" load -q -i "oci:$W/synth-zstd/oci:v1" -t synth:zst ;;
        pull-gz-rbox)    ms "$BIN/rbuild" --root "$r/s" pull -q "$REG/synth:gz" ;;
        pull-zst-rbox)   ms "$BIN/rbuild" --root "$r/s" pull -q "$REG/synth:zst" ;;
        pull-gz-podman)  podman_ms "$r/p" pull -q --tls-verify=false "$REG/synth:gz" ;;
        pull-zst-podman) podman_ms "$r/p" pull -q --tls-verify=false "$REG/synth:zst" ;;
        pull-gz-skopeo)  ms skopeo copy -q --src-tls-verify=false "docker://$REG/synth:gz" "dir:$r/d" ;;
        pull-zst-skopeo) ms skopeo copy -q --src-tls-verify=false "docker://$REG/synth:zst" "dir:$r/d" ;;
        run-gz-rrun)     ms "$BIN/rrun" --root "$r/s" run --rm --network none "$REG/bb:gz" true ;;
        run-gz-podman)   podman_ms "$r/p" run --rm --tls-verify=false --network none "$REG/bb:gz" true ;;
        run-gz-docker)   ms docker_ run --rm --network none "$REG/bb:gz" true
                         docker_ rmi -f "$REG/bb:gz" >/dev/null ;;
        run-gz-ctr)      ms ctr_pull_run
                         ctr_ image rm --sync "$REG/bb:gz" >/dev/null ;;
    esac
}

# One warm-up round, then N timed rounds, round-robin.
for t in "${TOOLS[@]}"; do fresh; one "$t" >/dev/null; done
for i in $(seq "$N"); do
    for t in "${TOOLS[@]}"; do fresh; record "$t" "$(one "$t")"; done
    echo "round $i/$N done" >&2
done

size() { du -sb "$1" | cut -f1 | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
rss() { # peak RSS in MiB of CMD
    fresh
    /usr/bin/time -v "$@" 2>"$W/time.log" >/dev/null || { cat "$W/time.log" >&2; return 1; }
    awk '/Maximum resident set size/ { printf "%.1f", $6 / 1024 }' "$W/time.log"
}
RSS_PULL_GZ=$(rss "$BIN/rbuild" --root "$W/run/s" pull -q "$REG/synth:gz")
RSS_PULL_ZST=$(rss "$BIN/rbuild" --root "$W/run/s" pull -q "$REG/synth:zst")
RSS_LOAD_GZ=$(rss "$BIN/rbuild" --root "$W/run/s" load -q -i "oci:$W/synth-gzip/oci:v1" -t x:1)
RSS_LOAD_ZST=$(rss "$BIN/rbuild" --root "$W/run/s" load -q -i "oci:$W/synth-zstd/oci:v1" -t x:1)
RSS_BIG="not measured (RBOX_IMGPATH_BIG=0)"
if [ "$BIG" = 1 ]; then
    a=$(rss "$BIN/rbuild" --root "$W/run/s" pull -q "$REG/big:gz")
    b=$(rss "$BIN/rbuild" --root "$W/run/s" load -q -i "oci:$W/synth-1g/oci:v1" -t x:1)
    RSS_BIG="rbuild pull $a MiB, rbuild load $b MiB (layout $(size "$W/synth-1g/oci/blobs"))"
fi
fresh

stat_of() { # median min max of the recorded ms
    tr ' ' '\n' <<<"${T[$1]}" | grep . | sort -n | awk '{ a[NR] = $1 } END { printf "%d %d %d", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
med() { stat_of "$1" | cut -d' ' -f1; }
ratio() { awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { printf "%.2f", a / b }'; }
# ratio to the longer of two medians
ratio_max() { awk -v a="$(med "$1")" -v b="$(med "$2")" -v c="$(med "$3")" 'BEGIN { m = b > c ? b : c; printf "%.2f", a / m }'; }
row() { # label tool format note
    local s; read -r a b c <<<"$(stat_of "$2")"
    echo "| $1 | $3 | $a | $b–$c | $4 |"
}

cat <<EOF
## Image path (benches/scripts/image-path.sh, N=$N)

$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average at end $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD).
Writes on a journaled ext4 (data=ordered) loop image. Input: synthetic 3-layer image, gzip layout $(size "$W/synth-gzip/oci/blobs"), zstd layout $(size "$W/synth-zstd/oci/blobs").

| what | input | median ms | min–max ms | × |
|---|---|---:|---:|---|
$(row "rbuild load (fresh store)" load-gz-rbox gzip "1.00")
$(row "umoci unpack" load-gz-umoci gzip "rbox = $(ratio load-gz-rbox load-gz-umoci)× umoci")
$(row "rbuild load (fresh store)" load-zst-rbox zstd "—")
$(row "rbuild pull (fresh store)" pull-gz-rbox gzip "1.00")
$(row "podman pull (fresh store)" pull-gz-podman gzip "rbox = $(ratio pull-gz-rbox pull-gz-podman)× podman")
$(row "skopeo copy to dir (download only)" pull-gz-skopeo gzip "rbox = $(ratio pull-gz-rbox pull-gz-skopeo)× skopeo")
$(row "rbuild pull (fresh store)" pull-zst-rbox zstd "1.00")
$(row "podman pull (fresh store)" pull-zst-podman zstd "rbox = $(ratio pull-zst-rbox pull-zst-podman)× podman")
$(row "skopeo copy to dir (download only)" pull-zst-skopeo zstd "rbox = $(ratio pull-zst-rbox pull-zst-skopeo)× skopeo")
$(row "rrun run --rm --network none REG/bb true (empty store)" run-gz-rrun "gzip, busybox" "1.00")
$(row "podman run --rm --network none REG/bb true (empty store, runc)" run-gz-podman "gzip, busybox" "rbox = $(ratio run-gz-rrun run-gz-podman)× podman")
$(row "docker run --rm --network none REG/bb true (private dockerd, image removed before, runc)" run-gz-docker "gzip, busybox" "rbox = $(ratio run-gz-rrun run-gz-docker)× docker")
$(row "ctr image pull + ctr run --rm REG/bb true (private containerd, image removed before, runc)" run-gz-ctr "gzip, busybox" "rbox = $(ratio run-gz-rrun run-gz-ctr)× ctr")

rbuild pull of the zstd image against the longer of skopeo's download and rbuild's load of the same layers from disk: $(ratio_max pull-zst-rbox pull-zst-skopeo load-zst-rbox)× (target ≤ 1.2×).

Peak RSS (/usr/bin/time -v, one run): rbuild pull gzip $RSS_PULL_GZ MiB, zstd $RSS_PULL_ZST MiB; rbuild load gzip $RSS_LOAD_GZ MiB, zstd $RSS_LOAD_ZST MiB.
1 GB synthetic gzip image: $RSS_BIG.
EOF
