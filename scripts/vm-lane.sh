#!/usr/bin/env bash
# The cgroup-v2 lane: run the test binaries that touch cgroups and the
# runtime inside a throw-away pure cgroup-v2 qemu guest (run-in-vm.sh).
# The guest shares the host's / read-only with a tmpfs on top; /tmp is a
# fresh tmpfs, so the tests keep their stores there (TMPDIR=/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
VM=${1:?usage: vm-lane.sh PATH/TO/run-in-vm.sh}
# Crates whose integration tests exercise cgroups, namespaces and overlay.
crates=(runner builder)
mapfile -t bins < <(cargo test --locked --no-run --message-format=json "${crates[@]/#/-p}" 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])
')
[ ${#bins[@]} -gt 0 ] || { echo "vm-lane: no integration test binaries found for ${crates[*]}" >&2; exit 1; }
status=0
# 6 GiB: the guest keeps stores on its /tmp tmpfs (half of its memory), and the
# interop tests export whole trees there. 2 vCPUs (TCG, slow): two tests at a
# time. 10 minutes at most per binary (the slowest takes ~90 s).
run_bin() { VM_MEM=${VM_MEM:-6G} VM_TIMEOUT=${VM_TIMEOUT:-600} RBOX_TEST_LANE=cgroup-v2-vm "$VM" "$1" "--test-threads=$2"; }
for bin in "${bins[@]}"; do
  echo "-- $(basename "$bin") in the cgroup-v2 guest"
  if ! run_bin "$bin" 2; then
    # Twice in two sessions a binary hung in the guest with two tests side by
    # side never finishing (progress_sink, interop_registry; not reproduced,
    # cause unknown). One retry, one test at a time, said in the log; a test
    # that really fails fails again.
    echo "vm-lane: $(basename "$bin") failed or timed out in the guest; retrying once, one test at a time" >&2
    run_bin "$bin" 1 || status=1
  fi
done
exit $status
