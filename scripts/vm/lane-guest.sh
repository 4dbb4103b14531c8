#!/usr/bin/env bash
# The cgroup-v2 lane's inside half: runs in the guest (scripts/vm/run.sh),
# one test binary after another, each in its package's directory as cargo
# runs it, and fails if any of them fails.
#
#   lane-guest.sh LIMIT THREADS PACKAGE_DIR:BINARY...
#
# A binary still running after LIMIT seconds is a failure, not something to
# retry: before it is killed, its processes (with their kernel stacks when
# running or blocked) go to stderr, and the kernel's backtraces of every CPU
# and blocked task go to the console (which run.sh prints on failure); the
# lane stops there because whatever hung may still hold the kernel.
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
  # A background job of a script starts with SIGINT and SIGQUIT ignored:
  # give the tests the dispositions a terminal user's shell has.
  # The guest is a throw-away machine: its own network namespace may get
  # rbox's bridge (fixtures::netns::require_private_netns).
  (cd "$dir" && exec env --default-signal RBOX_TEST_ANY_NETNS=1 "$bin" --test-threads="$threads") &
  pid=$!
  sleep "$limit" &
  dog=$!
  wait -n "$pid" "$dog"
  if ! kill -0 "$dog" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
    # Out of time: first what everything was doing, then kill it.
    say "TIMEOUT: $name still runs after ${limit}s; its processes, then the kernel's backtraces of every CPU and blocked task (console)"
    ps --ppid 2 -p 2 --deselect -o pid,ppid,stat,wchan:32,etime,args:160 >&2
    for t in /proc/[0-9]*/task/*; do
      case $(cut -d' ' -f3 "$t/stat" 2>/dev/null) in R | D) echo "--- $t $(cat "$t/comm")"; cat "$t/stack"; esac
    done >&2 2>/dev/null
    echo l > /proc/sysrq-trigger
    echo w > /proc/sysrq-trigger
    kill -KILL "$pid"
    say "FAILED: $name timed out; the $(($# - n)) binaries after it did not run"
    exit 124
  fi
  wait "$pid"
  rc=$?
  kill "$dog" 2>/dev/null
  took=$((SECONDS - start))
  if [ "$rc" != 0 ]; then
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
