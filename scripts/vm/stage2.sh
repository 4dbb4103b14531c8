# PID 1 of the guest once init.sh has switched into the new root (run by the
# busybox copied to /run/rbox-vm). Runs the host's command script (cmd.sh in
# the io share) with its output in the io share, stores its exit status there
# and powers off. If the command outlives its time, the kernel's view of
# every CPU and every blocked task goes to the console first, so a hang in
# the kernel leaves its backtrace behind.
B=/run/rbox-vm/busybox
IO=/run/rbox-vm/io
say() { echo "rbox-vm(guest): $*"; }
up() { $B cut -d' ' -f1 /proc/uptime; }
limit=$($B cat "$IO/timeout")

# The host tells a guest that never ran the command (retried) from one that
# failed while running it (never retried) by this file alone: without it,
# the command does not start.
if ! : > "$IO/started"; then
  say "BOOT FAILED: cannot write the started marker to the io share"
  echo "cannot write the started marker to the io share" > "$IO/boot-error"
  $B poweroff -f
fi
# /dev/net/tun (rootless containers' pasta) exists on devtmpfs only once
# its module is in, and as root's 0600: no udev here makes the static
# nodes of modules.devname or applies its rule (Debian's: 0666).
if /sbin/modprobe tun 2>/dev/null; then
  $B chmod 0666 /dev/net/tun
else
  say "no tun module: rootless pasta networking will fail"
fi
# /dev/fuse (rootless fuse-overlayfs) likewise: the module, and Debian's
# 0666 that udev would give it.
if /sbin/modprobe fuse 2>/dev/null || [ -c /dev/fuse ]; then
  $B chmod 0666 /dev/fuse
else
  say "no fuse module: rootless fuse-overlayfs will fail"
fi
say "command started at uptime $(up)s (at most ${limit}s)"
/bin/bash "$IO/cmd.sh" </dev/null >"$IO/stdout" 2>"$IO/stderr" &
cmd=$!
(
  $B sleep "$limit"
  say "TIMED OUT: the command still runs after ${limit}s; backtraces of every CPU and blocked task follow"
  echo l > /proc/sysrq-trigger
  echo w > /proc/sysrq-trigger
  say "end of the backtraces"
  echo 124 > "$IO/rc.tmp" && $B mv "$IO/rc.tmp" "$IO/rc"
  : > "$IO/timed-out"
  $B sync
  $B poweroff -f
) &
dog=$!
wait "$cmd"
rc=$?
$B kill "$dog" 2>/dev/null
[ -e "$IO/timed-out" ] && exec $B sleep 3600   # the watchdog is powering off
say "command exited with status $rc at uptime $(up)s"
echo "$rc" > "$IO/rc.tmp" && $B mv "$IO/rc.tmp" "$IO/rc"
$B sync
$B poweroff -f
