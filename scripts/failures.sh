#!/usr/bin/env bash
# What failed, from the output of `cargo test` (or of the cgroup-v2 lane,
# which prints the test binaries' output): each failing test's captured
# output (its panic message and assertion) again, at most 40 lines each,
# so the end of a long CI log names the assertion and not only the test.
#
#   scripts/failures.sh LOG
set -euo pipefail
log=${1:?usage: failures.sh LOG}
awk '
  /^---- .* stdout ----$/ { grab = 1; n = 0; print; next }
  grab && (/^failures:$/ || /^test result:/) { grab = 0; print ""; next }
  grab && /^---- .* stdout ----$/ { n = 0 }
  grab && n < 40 { print; n++ }
' "$log"
