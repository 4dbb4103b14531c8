#!/bin/busybox sh
# The guest's first process (/init of the initramfs that scripts/vm/run.sh
# builds), run by busybox. It turns the host's filesystem, shared read-only
# over virtio-9p, into a writable root (tmpfs overlay on top), mounts what a
# pure cgroup-v2 system has (cgroup2 with every controller enabled, /dev with
# devpts/shm/mqueue, bpffs, fresh tmpfs /tmp and /run), then switch_roots into
# it and hands over to stage2.sh, which runs the command.
#
# PID 1 itself switches root (not a child chroot): the kernel's helpers share
# PID 1's root, so module autoloading runs the host's /sbin/modprobe against
# the host's /lib/modules/<guest kernel>.
/bin/busybox --install -s /bin
export PATH=/bin
IO=/mnt/io   # the host's per-run directory (virtio-9p, writable)

say() { echo "rbox-vm(guest): $*"; }
# Boot failures are the lane's infrastructure failures: say so on the console
# and in the io share, then power off (the host sees no "started" marker).
die() {
  say "BOOT FAILED: $*"
  echo "$*" > "$IO/boot-error"
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel boots `quiet`; from here on every message reaches the console,
# backtraces (soft lockups, hung tasks, sysrq dumps) included.
echo 8 > /proc/sys/kernel/printk

while read -r m; do
  insmod "/lib/modules/$m.ko" || die "insmod $m"
done < /modules

p9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$p9" io "$IO" || die "mount the io share"
mount -t 9p -o "$p9,ro,cache=loose" hostroot /mnt/host || die "mount the host's / share"
mount -t tmpfs -o mode=0755 upper /mnt/rw || die "tmpfs for the root's upper layer"
mkdir -p /mnt/rw/root/upper /mnt/rw/root/work
R=/newroot
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/root/upper,workdir=/mnt/rw/root/work \
  root "$R" || die "overlay on the host's /"

mount -t proc proc "$R/proc" || die "proc"
mount -t sysfs sysfs "$R/sys" || die "sysfs"
CG=$R/sys/fs/cgroup
# As systemd mounts it on a unified host.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 "$CG" || die "cgroup2"
mount -t bpf bpf "$R/sys/fs/bpf" || die "bpffs"
mount -t devtmpfs devtmpfs "$R/dev" || die "devtmpfs"
mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts" || die "devpts"
ln -sfn pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm" || die "/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue" || die "mqueue"
ln -sfn /proc/self/fd "$R/dev/fd"
ln -sfn /proc/self/fd/0 "$R/dev/stdin"
ln -sfn /proc/self/fd/1 "$R/dev/stdout"
ln -sfn /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=0755,nosuid,nodev run "$R/run" || die "/run"
# Test stores live here: overlay upper dirs cannot live on overlay or 9p.
mount -t tmpfs -o mode=1777 tmp "$R/tmp" || die "/tmp"

# Host directories under /tmp or /run the command needs (its cwd, say): the
# fresh tmpfs hides them, so they come back as writable overlays of the share.
n=0
while read -r p; do
  [ -n "$p" ] || continue
  n=$((n + 1))
  mkdir -p "$R$p" "/mnt/rw/x$n/upper" "/mnt/rw/x$n/work"
  mount -t overlay -o "lowerdir=/mnt/host$p,upperdir=/mnt/rw/x$n/upper,workdir=/mnt/rw/x$n/work" \
    "x$n" "$R$p" || die "bring back $p"
done < /mnt/io/expose

# What stage 2 needs, on the new root's /run (tmpfs): busybox (PID 1's shell,
# poweroff) and the io share.
S=$R/run/rbox-vm
mkdir -p "$S/io"
cp /bin/busybox /stage2.sh "$S/" || die "copy stage 2"
mount --move "$IO" "$S/io" || die "move the io share"
IO=$S/io

# Like systemd's /: containers then choose their own propagation.
mount --make-rshared "$R"
for c in $(cat "$CG/cgroup.controllers"); do
  echo "+$c" > "$CG/cgroup.subtree_control" || die "enable the $c controller"
done
hostname rbox-vm
ip link set lo up || die "lo up"
exec switch_root "$R" /run/rbox-vm/busybox sh /run/rbox-vm/stage2.sh
