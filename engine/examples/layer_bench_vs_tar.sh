#!/bin/bash
# Side-by-side unpack and import timings of rbox's layer code against GNU tar,
# on tmpfs (/dev/shm), as root. Needs: tar, zstd, and
#   CARGO_TARGET_DIR=... cargo build --release -p engine --example layer_bench
#
#   engine/examples/layer_bench_vs_tar.sh [TARGET_DIR]   (default: ./target)
#
# The image: 3 layers made from this host's files with write_layer:
#   1: /usr/share/{doc,zoneinfo,i18n,perl,vim}   (~220 MB, ~11k files)
#   2: /usr/include                              (~125 MB, ~9k files)
#   3: whiteouts for usr/share/doc and usr/share/i18n, plus one file
# Each round: `tar -I zstd -xf` of the 3 blobs in parallel, then
# `layer_bench unpack` (engine::layer::unpack_image) of the same blobs into a
# fresh store; then `tar -I zstd -xf` of a rootfs tarball vs `layer_bench
# import` (engine::layer::import_tarball). Prints wall and CPU (user+sys).
set -euo pipefail
TOOL=${1:-target}/release/examples/layer_bench
B=/dev/shm/rbox-layer-bench; N=${N:-7}
[ -x "$TOOL" ] || { echo "build first: cargo build --release -p engine --example layer_bench" >&2; exit 1; }
rm -rf $B; mkdir -p $B/t1/usr/share $B/t2/usr $B/t3/usr/share $B/t3/etc
for d in doc zoneinfo i18n perl vim; do [ -d /usr/share/$d ] && cp -a /usr/share/$d $B/t1/usr/share/; done
cp -a /usr/include $B/t2/usr/
mknod $B/t3/usr/share/doc c 0 0; mknod $B/t3/usr/share/i18n c 0 0; echo hi > $B/t3/etc/motd
echo "trees: $(du -sm $B/t1 $B/t2 | awk '{s+=$1} END {print s}') MB, $(find $B/t1 $B/t2 $B/t3 | wc -l) entries"
(cd $B && $TOOL write $B/store t1 t2 t3 > layers.txt)
PAIRS=$(cut -d' ' -f1 $B/layers.txt | tr '\n' ' ')
BLOBS=$(cut -d' ' -f1 $B/layers.txt | cut -d= -f1 | sed 's/blake3:/'"${B//\//\\/}"'\/store\/blobs\/blake3\//' | tr '\n' ' ')
tar --numeric-owner -I zstd -cf $B/rootfs.tar.zst -C $B/t1 .
for i in $(seq $N); do
  rm -rf $B/x $B/s; mkdir -p $B/x/1 $B/x/2 $B/x/3 $B/s/blobs/blake3; cp $B/store/blobs/blake3/* $B/s/blobs/blake3/
  set -- $BLOBS
  /usr/bin/time -f "round $i unpack tar : wall %e cpu %U+%S" bash -c "tar -I zstd -xf $1 -C $B/x/1 & tar -I zstd -xf $2 -C $B/x/2 & tar -I zstd -xf $3 -C $B/x/3 & wait"
  /usr/bin/time -f "round $i unpack rbox: wall %e cpu %U+%S" $TOOL unpack $B/s $PAIRS 2>&1 | grep round
  rm -rf $B/x $B/s; mkdir -p $B/x $B/s
  /usr/bin/time -f "round $i import tar : wall %e cpu %U+%S" tar -I zstd -xf $B/rootfs.tar.zst -C $B/x
  /usr/bin/time -f "round $i import rbox: wall %e cpu %U+%S" $TOOL import $B/s $B/rootfs.tar.zst 2>&1 | grep round
done
rm -rf $B
