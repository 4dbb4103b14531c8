#!/usr/bin/env bash
# Debian packages rbox's build, tests and demo need (idempotent; run as root).
set -euo pipefail
pkgs=(
  busybox-static   # the base image's userland (fixtures); the cgroup-v2 guest's initramfs shell
  zstd             # command-line zstd for the tar comparisons in tests
  tmux             # drives `rrun run -it` like a person would, in the tty test
  gcc libc6-dev    # the escape tests' static C probe (gcc -static)
  crun runc        # peer OCI runtimes behind `rrun run --runtime`
  containerd       # real clients of rbox-runtime in the interop tests: a private containerd + ctr,
  podman           # and Podman (with conmon) on a private store,
  docker.io        # and a private dockerd (--add-runtime rbox=rbox-runtime; its own containerd)
  uidmap           # newuidmap/newgidmap: rootless rbox's user namespace map (and its tests)
  passt            # pasta: rootless containers' user-mode network and -p forwarding
  fuse-overlayfs   # rootless containers' overlay where the kernel refuses overlayfs in a user namespace (RBOX_OVERLAY=fuse)
  iproute2         # `ip` to inspect and wire network namespaces in tests (and lo up in the guest)
  nftables         # `nft`: bridge networking programs each network's NAT table with it
  pkg-config       # build scripts (zstd-sys) look for system libraries with it
  libseccomp-dev   # rbox-runtime compiles linux.seccomp with libseccomp (libseccomp crate; .a for the static build)
  docker-registry  # OCI interop tests: a registry on loopback,
  skopeo umoci     # peer image tools,
  apache2-utils    # and htpasswd for its auth (and ab: benches/scripts/port-throughput.sh)
  # The cgroup-v2 lane (scripts/vm-lane.sh, scripts/vm/run.sh):
  qemu-system-x86    # the throw-away guest (TCG without KVM), 9p shares of the host's /
  linux-image-amd64  # the guest's kernel (/boot/vmlinuz-X) and its modules (/lib/modules/X)
  kmod               # modinfo to find the modules the initramfs needs; modprobe in the guest
  xz-utils           # unpacks xz-compressed kernel modules into the initramfs
  jq                 # picks the test binaries out of cargo's JSON messages
)
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
