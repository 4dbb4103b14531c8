#!/usr/bin/env bash
# The release binaries as rbox ships and benchmarks them, in target/release
# (or $CARGO_TARGET_DIR/release): every binary as `cargo build --release`
# makes it, then rrun, rbuild and rbox-runtime linked again statically
# (glibc static-pie).
# A static rrun skips the dynamic loader on every container start: 0.3-0.5 ms
# of CPU per `rrun run --rm busybox true` (about 9%, perf stat -r 60, README
# "Container startup"); rbox-runtime's create pays the same. crt-static is
# set for these three binaries only
# (`cargo rustc`): as a global RUSTFLAG it would also apply to proc-macro
# crates, which cannot be static.
# libseccomp (rbox-runtime's linux.seccomp) is linked from its archive,
# libseccomp.a of libseccomp-dev, so that the static-pie rbox-runtime needs
# no libseccomp.so on the machine it runs on; set for the whole script so
# that the libseccomp-sys build is the same for both cargo commands.
set -euo pipefail
cd "$(dirname "$0")/.."
export LIBSECCOMP_LINK_TYPE=static
# rustc looks for a static library in its own -L paths only.
LIBSECCOMP_LIB_PATH=$(pkg-config --variable=libdir libseccomp)
export LIBSECCOMP_LIB_PATH
cargo build --release --locked --bins "$@"
for bin in runner:rrun runner:rbox-runtime builder:rbuild; do
  cargo rustc --release --locked -p "${bin%%:*}" --bin "${bin##*:}" "$@" -- -C target-feature=+crt-static
done
