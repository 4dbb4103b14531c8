#!/usr/bin/env bash
# Debian packages rbox's build, tests and demo need (idempotent; run as root).
#   busybox-static  the base image's userland (fixtures)
#   zstd            command-line zstd for the tar comparisons in tests
#   tmux            drives `rrun run -it` like a person would, in the tty test
#   qemu-system-x86 linux-image-amd64 xz-utils
#                   the throw-away cgroup-v2 VM (../shared/tools/run-in-vm.sh)
#   crun runc       peer OCI runtimes behind `rrun run --runtime`
#   iproute2        `ip` to inspect network namespaces in tests
#   docker-registry skopeo umoci apache2-utils
#                   OCI interop tests: a loopback registry, peer image tools, htpasswd
set -euo pipefail
pkgs=(busybox-static zstd tmux qemu-system-x86 linux-image-amd64 xz-utils crun runc iproute2 pkg-config docker-registry skopeo umoci apache2-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
