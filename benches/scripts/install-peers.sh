#!/bin/sh
# Installs the tools the comparison harness (`cargo run -p benches --release
# --bin compare`) times rbox against, from Debian's own packages. Idempotent:
# packages already present are left as they are. Run as root.
#
# docker.io's package would start a system dockerd (with iptables rules) on
# a machine with an init system; the harness starts its own dockerd on a
# private socket instead, so service starts are denied for the duration of
# the install with a temporary policy-rc.d (only if none exists already).
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-peers.sh: must run as root (apt-get install)" >&2
    exit 1
fi

PEERS="crun runc podman buildah umoci skopeo docker.io hyperfine debootstrap zstd busybox-static e2fsprogs util-linux"

missing=""
for p in $PEERS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-peers.sh: all peers already installed"
    exit 0
fi

policy=/usr/sbin/policy-rc.d
made_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=yes
fi
cleanup() { if [ "$made_policy" = yes ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
echo "install-peers.sh: installed:$missing"
