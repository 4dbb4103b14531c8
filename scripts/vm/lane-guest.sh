#!/usr/bin/env bash
# The cgroup-v2 lane's inside half: runs in the guest (scripts/vm/run.sh),
# one test binary after another, each in its package's directory as cargo
# runs it, and fails if any of them fails.
#
#   lane-guest.sh LIMIT THREADS PACKAGE_DIR:BINARY...
#
# A binary still running after LIMIT seconds is a failure, not something to
# retry: the kernel's backtraces of every CPU and blocked task go to the
# console (which run.sh prints on failure), and the lane stops there because
# whatever hung may still hold the kernel.
set -uo pipefail
limit=${1:?usage: lane-guest.sh LIMIT THREADS PACKAGE_DIR:BINARY...}
threads=${2:?usage: lane-guest.sh LIMIT THREADS PACKAGE_DIR:BINARY...}
shift 2
say() { echo "vm-lane(guest): $*" >&2; }

say "kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
failed=()
n=0
for entry in "$@"; do
  n=$((n + 1))
  dir=${entry%%:*} bin=${entry#*:}
  name=${bin##*/}
  say "[$n/$#] ${dir##*/}: $name --test-threads=$threads"
  start=$SECONDS
  (cd "$dir" && exec timeout -k 10 "$limit" "$bin" --test-threads="$threads")
  rc=$?
  took=$((SECONDS - start))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    say "TIMEOUT: $name still ran after ${limit}s; kernel backtraces of every CPU and blocked task go to the console"
    ps -eo pid,ppid,stat,wchan:32,etime,args >&2
    echo l > /proc/sysrq-trigger
    echo w > /proc/sysrq-trigger
    say "FAILED: $name timed out; the $(($# - n)) binaries after it did not run"
    exit 124
  elif [ "$rc" != 0 ]; then
    say "FAILED: $name exited with status $rc after ${took}s"
    failed+=("$name")
  else
    say "ok: $name in ${took}s"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${#failed[@]} of $# test binaries: ${failed[*]}"
  exit 1
fi
say "all $# test binaries passed"
