#!/usr/bin/env bash
# The cgroup-v2 lane: the integration tests of the crates that touch
# cgroups, namespaces and overlay, run as root inside one throw-away pure
# cgroup-v2 qemu guest (scripts/vm/run.sh; the guest side is
# scripts/vm/lane-guest.sh). The guest keeps test stores on its fresh /tmp
# tmpfs.
#
# Knobs: RBOX_VM_LANE_LIMIT (seconds per test binary, default 900: the
# hardening binaries are slow under TCG on a busy host),
# RBOX_VM_LANE_TOTAL (seconds for all of them, default 2700),
# RBOX_VM_LANE_THREADS (tests at a time, default 2), RBOX_VM_LANE_ALL=1 (also
# the host-only binaries), and run.sh's RBOX_VM_*.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(runner builder)
per_bin=${RBOX_VM_LANE_LIMIT:-900}
threads=${RBOX_VM_LANE_THREADS:-2}

# PACKAGE_DIR:BINARY for every integration test binary (cargo runs each in
# its package's directory; so does the guest).
artifacts=$(cargo test --locked --no-run --message-format=json "${crates[@]/#/-p}")
mapfile -t bins < <(jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.kind == ["test"])
  | (.manifest_path | sub("/[^/]*$"; "")) + ":" + .executable' <<<"$artifacts" | sort)
# Host lane only (RBOX_VM_LANE_ALL=1 runs them here too): the Containerfile
# parser tests touch no kernel interface, and the image interop tests
# (interop_files, _progress, _registry, _pull_stream: skopeo, umoci, a registry on
# loopback) check image formats and the registry protocol, which do not
# depend on the cgroup layout; under TCG they alone would take longer than
# the rest of the lane. The runtime interop tests (containerd, Podman and
# Docker driving rbox-runtime) do depend on it and run in both lanes.
host_only='^(parse_|interop_(files|progress|registry|pull_stream)-)'
if [ "${RBOX_VM_LANE_ALL:-0}" != 1 ]; then
  kept=()
  for b in "${bins[@]}"; do
    name=${b##*/}
    if [[ $name =~ $host_only ]]; then echo "vm-lane: host lane only: ${name%-*}"; else kept+=("$b"); fi
  done
  bins=("${kept[@]}")
fi
[ ${#bins[@]} -gt 0 ] || { echo "vm-lane: no integration test binaries found for ${crates[*]}" >&2; exit 1; }
echo "vm-lane: ${#bins[@]} test binaries of ${crates[*]} in the guest, $threads tests at a time, ${per_bin}s at most each:"
printf '  %s\n' "${bins[@]##*:}"

# The whole guest's budget: CI's own limit.
total=${RBOX_VM_LANE_TOTAL:-2700}
# run.sh says how the guest ended; only "infrastructure" (the guest never
# started the tests) is retried.
outcome=$(mktemp)
# 6 GiB: half of it is the guest's /tmp, where stores and exported trees live.
run_lane() {
  RBOX_VM_MEM=${RBOX_VM_MEM:-6G} RBOX_VM_TIMEOUT=$total RBOX_VM_OUTCOME=$outcome \
    scripts/vm/run.sh scripts/vm/lane-guest.sh "$per_bin" "$threads" "${bins[@]}"
}
# Its output is kept to name, at the end, what each failing test said
# (scripts/failures.sh): CI shows the end of a long log, which after a
# failure is the guest's console.
lane_log=$(mktemp)
trap 'rm -f "$outcome" "$lane_log"' EXIT
start=$SECONDS
rc=0
run_lane > >(tee -a "$lane_log") 2>&1 || rc=$?
if [ "$rc" = 125 ] && [ "$(cat "$outcome" 2>/dev/null)" = infrastructure ]; then
  # Only a guest that never started the tests is retried, once, and loudly;
  # a test that fails or hangs, or a kernel that panics or locks up while
  # the tests run, fails the lane (run.sh: 124 or the tests' own status).
  echo "vm-lane: ############################################################" >&2
  echo "vm-lane: INFRASTRUCTURE FAILURE: the guest did not boot; retrying ONCE" >&2
  echo "vm-lane: ############################################################" >&2
  rc=0
  run_lane > >(tee -a "$lane_log") 2>&1 || rc=$?
fi
# tee may still be writing: the process substitution is the last one.
wait $! 2>/dev/null || true
if [ "$rc" != 0 ]; then
  echo "vm-lane: what the failing tests said:"
  bash scripts/failures.sh "$lane_log"
fi
echo "vm-lane: status $rc after $((SECONDS - start))s"
exit "$rc"
