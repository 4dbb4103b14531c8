#!/usr/bin/env bash
# The library unit tests as an unprivileged user (uid 65534): the code that
# decides (cgroup files, mount plans, option parsing, seccomp tables, state)
# must be testable without root. The root suites (tests/) stay root-only.
# Run as root: it builds as the caller and drops to 65534 to run.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t bins < <(cargo test --workspace --lib --locked --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])
')
[ ${#bins[@]} -gt 0 ] || { echo "unit-unprivileged: no library test binaries built" >&2; exit 1; }
# The checkout may sit below a directory only root can enter (mktemp -d):
# run copies from a world-readable scratch directory.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
chmod 0755 "$scratch"
mkdir "$scratch/tmp" && chown 65534:65534 "$scratch/tmp"
status=0
for bin in "${bins[@]}"; do
  cp "$bin" "$scratch/"
  name=$(basename "$bin")
  echo "-- $name as uid 65534"
  (cd "$scratch" && setpriv --reuid 65534 --regid 65534 --clear-groups \
     env -i PATH=/usr/bin:/bin HOME="$scratch/tmp" TMPDIR="$scratch/tmp" "./$name" --test-threads=2) || status=1
done
exit $status
