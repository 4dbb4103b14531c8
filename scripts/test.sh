#!/usr/bin/env bash
# The test command (README "Tests"): every test for real, as root, on this
# host's cgroup layout and again inside a throw-away pure cgroup-v2 VM.
set -euo pipefail
# Signals ignored where we were started (nohup, a script's background job)
# stay ignored in every rrun and rbuild the tests start, as they should;
# the tests send those signals and expect the dispositions a terminal
# user's shell gives. Start over with every signal at its default.
if [ "${RBOX_TEST_SIGNALS_RESET:-}" != 1 ]; then
  exec env --default-signal RBOX_TEST_SIGNALS_RESET=1 bash "$0" "$@"
fi

cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests mount, clone namespaces and create cgroups: run as root" >&2; exit 1; }

# CI builds once from scratch: incremental state would only cost disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
echo "test.sh: $(nproc) cores, $(df -h --output=avail . | tail -n 1 | tr -d ' ') free on $(df --output=target . | tail -n 1)"
build_log=$(mktemp)
if ! cargo build --workspace --all-targets --locked >"$build_log" 2>&1; then
  echo "test.sh: cargo build failed; the end of its output:" >&2
  tail -n 80 "$build_log" >&2
  exit 1
fi
tail -n 1 "$build_log"; rm -f "$build_log"
echo "== cargo fmt --check and clippy (warnings are errors) =="
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
echo "== library unit tests as an unprivileged user =="
bash scripts/unit-unprivileged.sh
echo "== host lane ($(scripts/cgroup-mode.sh)) =="
# In a network namespace of its own: containers and RUN steps default to
# rbox's bridge, which must not be made in the machine's namespace.
# --no-fail-fast: one run reports every failing suite, not just the first.
# The output is kept to name, at the end, what each failing test said
# (scripts/failures.sh): CI shows the end of a long log.
lane_log=$(mktemp)
lane_rc=$(mktemp)
trap 'rm -f "$lane_log" "$lane_rc"' EXIT
{
  rc=0
  scripts/in-netns.sh cargo test --workspace --locked --no-fail-fast -- --test-threads=2 2>&1 || rc=$?
  echo "$rc" >"$lane_rc"
} | tee "$lane_log"
rc=$(cat "$lane_rc")
if [ "$rc" != 0 ]; then
  echo "== host lane FAILED (status $rc); what the failing tests said: =="
  bash scripts/failures.sh "$lane_log"
  exit "$rc"
fi

if [ "${RBOX_SKIP_VM:-0}" = 1 ]; then
  echo "== cgroup-v2 lane: SKIPPED because RBOX_SKIP_VM=1 =="
else
  echo "== cgroup-v2 lane (qemu guest, scripts/vm-lane.sh) =="
  bash scripts/vm-lane.sh
fi
