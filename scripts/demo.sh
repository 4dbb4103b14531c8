#!/usr/bin/env bash
# The README's main job, end to end on a fresh Debian/Ubuntu machine as root:
# install what rbox needs, build it, make the busybox base image, build the
# example image from examples/hello/Containerfile and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: rbox mounts and creates namespaces and cgroups: run as root" >&2; exit 1; }
# The demo's containers run in a network namespace of its own
# (scripts/in-netns.sh): rbuild's RUN steps and rrun's containers default
# to rbox's bridge network, whose bridge and NAT table the demo must not
# leave in this machine's network. Outside the demo they are made in the
# host's, as Docker makes docker0.
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  bash scripts/install-deps.sh
  bash scripts/build-release.sh
  exec scripts/in-netns.sh bash scripts/demo.sh
fi
export PATH=$PWD/target/release:$PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== base image: busybox from Debian's busybox-static"
mkfixtures busybox-tar "$work/busybox.tar.zst"
rbuild import --change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$work/busybox.tar.zst" busybox:latest
rbuild images

echo "== build examples/hello"
rbuild build -t hello:latest examples/hello

echo "== run it"
rrun run --rm hello:latest
