#!/bin/bash
# The cgroup-v2 lane: build the runner's test binaries on the host, then run
# each one as root in a throw-away pure cgroup-v2 VM
# (../shared/tools/run-in-vm.sh). The host itself is the v1/hybrid lane
# (`cargo test -p runner` as root).
#
# Usage: runner/ci/vm-lane.sh [TEST-NAME-FILTER...]   (from anywhere)
# Env:   RUN_IN_VM=path/to/run-in-vm.sh   CARGO_TARGET_DIR as for cargo.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
vm=${RUN_IN_VM:-$repo/../shared/tools/run-in-vm.sh}
[ -x "$vm" ] || { echo "vm-lane: $vm not found (set RUN_IN_VM)" >&2; exit 2; }
cd "$repo"
mapfile -t bins < <(cargo test -p runner --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//' | sort -u)
[ ${#bins[@]} -gt 0 ] || { echo "vm-lane: no test binaries built" >&2; exit 2; }
status=0
for b in "${bins[@]}"; do
  echo "== $(basename "$b") (cgroup v2 VM)"
  # The guest's / is an overlay: stores (overlay upper dirs) go on its /tmp tmpfs.
  if ! RRUN_TEST_TMP=/tmp "$vm" "$b" --test-threads=2 "$@"; then
    status=1
  fi
done
exit $status
