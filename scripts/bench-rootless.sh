#!/usr/bin/env bash
# Start time of `run --rm busybox /bin/true` with no network: rootless rrun,
# rootful rrun and rootless Podman (runc, cgroupfs, a private store and
# containers.conf) as the same user; N interleaved rounds, medians in µs.
# Run as root in a private network namespace, after building the bins:
#   cargo build --workspace --bins && N=10 scripts/in-netns.sh scripts/bench-rootless.sh
# (BIN=target/release for release binaries).
# Makes a user rbxbench with subordinate ranges and removes it at the end.
# Podman rootless runs with runc: crun refuses this host's cgroup v1
# hybrid ("cgroups in hybrid mode not supported").
set -uo pipefail
WT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$WT/target/debug}   # the rbox binaries (debug: what the tests build)
B=$(mktemp -d /tmp/bench-rootless.XXXXXX)
chmod 755 $B
N=${N:-10}
U=rbxbench
H=$B/home
cleanup() {
  for p in $(ps -o pid= -u $U); do kill -9 $p; done 2>/dev/null
  sleep 0.3
  exec 9>/tmp/rbox-test-rootless-subids.lock; flock 9
  userdel $U 2>/dev/null
  sed -i "/^$U:/d" /etc/subuid /etc/subgid
  flock -u 9
  rm -rf $B
}
trap cleanup EXIT
mkdir -p $H
exec 9>/tmp/rbox-test-rootless-subids.lock; flock 9
useradd -M -s /bin/sh -d $H $U
sed -i "/^$U:/d" /etc/subuid /etc/subgid
echo "$U:1900000000:65536" >> /etc/subuid; echo "$U:1900000000:65536" >> /etc/subgid
flock -u 9
chown $U: $H; chmod 700 $H
uid=$(id -u $U) gid=$(id -g $U)
$BIN/mkfixtures busybox-tar $B/busybox-rootfs.tar >/dev/null
# rootful store
$BIN/rbuild --root $B/rootstore import $B/busybox-rootfs.tar busybox:latest >/dev/null
$BIN/rbuild --root $B/rootstore save -o $B/busybox-oci.tar busybox:latest 2>&1 | tail -2
chmod 644 $B/busybox-oci.tar $B/busybox-rootfs.tar
asuser() { setpriv --reuid $uid --regid $gid --init-groups -- env -i HOME=$H USER=$U LOGNAME=$U PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR=$H/run CONTAINERS_CONF=$H/containers.conf CONTAINERS_STORAGE_CONF=$H/storage.conf "$@"; }
mkdir -p $H/run; chmod 700 $H/run; chown $U: $H/run
cat > $H/containers.conf <<C
[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
events_logfile_path = "$H/events.log"
tmp_dir = "$H/ptmp"
volume_path = "$H/volumes"
C
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/prun"\n' $H $H > $H/storage.conf
chown $U: $H/containers.conf $H/storage.conf
(cd $H && asuser $BIN/rbuild load -q -t busybox:latest -i $B/busybox-oci.tar) || echo "rbuild load as user failed"
(cd $H && asuser podman load -q -i $B/busybox-oci.tar 2>&1 | tail -2) || echo "podman load failed"
(cd $H && asuser podman images 2>&1 | tail -3)
R_ROOTLESS() { (cd $H && asuser $BIN/rrun run --rm --network none busybox /bin/true); }
R_ROOT() { $BIN/rrun --root $B/rootstore run --rm --network none busybox /bin/true; }
R_PODMAN() { (cd $H && asuser podman run --rm --network none busybox:latest /bin/true); }
for f in R_ROOTLESS R_ROOT R_PODMAN; do $f >/dev/null 2>$B/$f.err || { echo "$f failed:"; cat $B/$f.err; }; done
for i in $(seq $N); do
  for f in R_ROOTLESS R_ROOT R_PODMAN; do
    s=$(date +%s%N); $f >/dev/null 2>&1; rc=$?; e=$(date +%s%N)
    echo "$f $(( (e - s) / 1000 )) $rc"
  done
done > $B/times.txt
for f in R_ROOTLESS R_ROOT R_PODMAN; do
  med=$(grep "^$f " $B/times.txt | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
  bad=$(grep "^$f " $B/times.txt | awk '$3!=0' | wc -l)
  echo "$f median_us=$med failures=$bad"
done
