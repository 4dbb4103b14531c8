#!/usr/bin/env bash
# Runs the criterion suite (cargo bench -p benches) as root and writes the
# estimates criterion prints into benches/results/criterion.md, with the
# machine and the commit. Extra arguments go to criterion (e.g.
# `--measurement-time 10`).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=benches/results/criterion.md
mkdir -p benches/results
log=$(mktemp)
trap 'rm -f "$log"' EXIT
[ "$(id -u)" = 0 ] || { echo "run-criterion.sh: the benches mount filesystems and create cgroups: run as root" >&2; exit 1; }
commit=${RBOX_BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
# Only the criterion targets: the lib and bin test harnesses reject criterion flags.
cargo bench -p benches --bench unpack --bench mount --bench spawn --bench snapshot -- "$@" 2>&1 | tee "$log"
{
  echo "### criterion suite"
  echo
  echo "Machine: $(nproc) cores, kernel $(uname -r), load average at end $(cut -d' ' -f1-3 /proc/loadavg).  "
  echo "Tree: commit $commit. Targets on: ${RBOX_BENCH_FS:-ext4} scratch filesystem (see benches/README.md).  "
  echo "Command: \`bash benches/scripts/run-criterion.sh $*\` (\`cargo bench -p benches\`). [lower estimate, estimate, upper estimate] per iteration."
  echo
  echo '```'
  # A long benchmark name is printed on its own line above "time:".
  awk '/^bench |skipped/ {print; next}
       /^[^ ].*time:/ {print; next}
       /^ +time:/ {print prev; print; next}
       /^[a-z][^ ]*\/[^ ]*$/ {prev=$0}' "$log" | grep -v '^Benchmarking '
  echo '```'
} > "$out"
echo "run-criterion.sh: wrote $out"
