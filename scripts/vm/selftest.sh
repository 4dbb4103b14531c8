#!/usr/bin/env bash
# Checks, with real guests, that scripts/vm/run.sh tells the ways a run can
# end apart, so that scripts/vm-lane.sh's one retry (for "infrastructure"
# only) can never hide a failure of what was tested:
#
#   a command that passes                      0    ran
#   a command that itself exits 125            125  ran             (not retried)
#   a kernel panic while the command runs      124  stopped         (not retried)
#   a command that outlives RBOX_VM_TIMEOUT    124  stopped         (not retried)
#   a guest that dies before the command runs  125  infrastructure  (retried once)
#
# Five short guests, one after another (each boots in seconds, even under
# TCG). As root, like run.sh.
#
#   scripts/vm/selftest.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0

# check NAME WANT_STATUS WANT_OUTCOME WANT_CONSOLE_REGEX [ENV=VALUE...] -- COMMAND...
check() {
  local name=$1 want_rc=$2 want_outcome=$3 want_console=$4 rc outcome
  shift 4
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  echo "selftest: $name"
  rc=0
  env RBOX_VM_MEM=512M RBOX_VM_OUTCOME="$out/outcome" "${envs[@]}" \
    "$here/run.sh" "$@" >"$out/stdout" 2>"$out/stderr" || rc=$?
  outcome=$(cat "$out/outcome" 2>/dev/null || echo '(none)')
  if [ "$rc" != "$want_rc" ] || [ "$outcome" != "$want_outcome" ] ||
    { [ -n "$want_console" ] && ! grep -qE "$want_console" "$out/stderr"; }; then
    echo "selftest: FAILED: $name: status $rc, outcome $outcome;" \
      "wanted $want_rc, $want_outcome${want_console:+, and /$want_console/ on the console}" >&2
    sed 's/^/    /' "$out/stderr" | tail -n 40 >&2
    failed=$((failed + 1))
  else
    echo "selftest: ok: $name: status $rc, outcome $outcome"
  fi
}

check "a command that passes" 0 ran '' -- true
check "a command that exits 125 itself" 125 ran '' -- sh -c 'exit 125'
check "a kernel panic during the command" 124 stopped 'Kernel panic' \
  -- sh -c 'echo c > /proc/sysrq-trigger; sleep 600'
check "a command that runs out of time" 124 stopped 'TIMED OUT' \
  RBOX_VM_TIMEOUT=15 -- sleep 600
# In 80 MiB Debian's 6.1 kernel boots and then panics, out of memory, while
# unpacking the initramfs ("System is deadlocked on memory"): the guest dies
# before stage 2 starts anything.
check "a guest that dies before the command" 125 infrastructure 'INFRASTRUCTURE' \
  RBOX_VM_MEM=80M -- true

if [ "$failed" -gt 0 ]; then
  echo "selftest: FAILED: $failed of 5 checks" >&2
  exit 1
fi
echo "selftest: all 5 checks passed"
