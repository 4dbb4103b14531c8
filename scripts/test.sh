#!/usr/bin/env bash
# The test command (README "Tests"): every test for real, as root, on this
# host's cgroup layout and again inside a throw-away pure cgroup-v2 VM.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests mount, clone namespaces and create cgroups: run as root" >&2; exit 1; }

cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
echo "== host lane ($(scripts/cgroup-mode.sh)) =="
cargo test --workspace --locked -- --test-threads=2

VM=${RBOX_VM_SCRIPT:-../shared/tools/run-in-vm.sh}
if [ "${RBOX_SKIP_VM:-0}" = 1 ]; then
  echo "== cgroup-v2 lane: skipped because RBOX_SKIP_VM=1 =="
elif [ ! -x "$VM" ]; then
  echo "== cgroup-v2 lane: FAILED: $VM not found (set RBOX_VM_SCRIPT, or RBOX_SKIP_VM=1 to skip on purpose) ==" >&2
  exit 1
else
  echo "== cgroup-v2 lane (qemu guest via $VM) =="
  bash scripts/vm-lane.sh "$VM"
fi
