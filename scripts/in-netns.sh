#!/usr/bin/env bash
# Run a command in a network and mount namespace of its own, with lo up
# and a private /run/rbox (rbox's network leases): bridges, veths, NAT
# rules and leases made by the tests vanish with it, and the machine's
# own network is never changed. Loopback works as usual inside.
#   scripts/in-netns.sh cargo test -p runner
set -euo pipefail
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  parent=$(readlink /proc/self/ns/net)
  exec env RBOX_IN_NETNS=1 RBOX_NETNS_PARENT="$parent" unshare --net --mount --fork -- "$0" "$@"
fi
if [ "$(readlink /proc/self/ns/net)" = "${RBOX_NETNS_PARENT:-}" ]; then
  echo "in-netns.sh: not in a new network namespace; refusing to go on" >&2
  exit 1
fi
ip link set lo up
mkdir -p /run/rbox
mount -t tmpfs -o mode=0700 rbox-netns /run/rbox
exec "$@"
