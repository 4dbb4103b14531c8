#!/usr/bin/env bash
# Run one command as root inside a throw-away pure cgroup-v2 qemu guest and
# exit with its status. The guest boots Debian's kernel from /boot with a
# busybox initramfs (scripts/vm/init.sh) and sees the host's / read-only over
# virtio-9p, with a tmpfs on top: the same paths, binaries and libraries, and
# writes that vanish with the guest. /tmp and /run are fresh tmpfs (overlay
# upper dirs cannot live on overlay or 9p); a cwd under them is brought back.
#
#   scripts/vm/run.sh [--] COMMAND [ARGS...]
#
# The command runs in the caller's cwd with the caller's environment (minus
# TMPDIR and session variables), stdin from /dev/null; its stdout and stderr
# stream to ours.
#
# Exit status: the command's own; 124 when it ran out of time or the guest
# stopped answering or died (a kernel panic) while it ran (a failure of what
# was tested: the console shows the kernel's backtraces); 125 when the guest
# never started the command (the VM failed to boot: an infrastructure
# failure). A command may itself exit 125: RBOX_VM_OUTCOME tells which it
# was. On any failure, and whenever the guest kernel reported a problem (a
# soft lockup, an RCU stall, an oops), the console's interesting part is
# printed and the whole console is kept.
#
# Knobs (environment):
#   RBOX_VM_TIMEOUT=1800  seconds the command may run
#   RBOX_VM_MEM=4G  RBOX_VM_CPUS=2
#   RBOX_VM_KERNEL=/boot/vmlinuz-X  (default: the newest one with /lib/modules/X)
#   RBOX_VM_ACCEL=auto|kvm|tcg      (auto: kvm when kvm_intel/kvm_amd are loaded)
#   RBOX_VM_CONSOLE=1     stream the guest's console to stderr as well
#   RBOX_VM_DIR=DIR       initramfs cache, runs, kept consoles (default: target/vm)
#   RBOX_VM_OUTCOME=FILE  also write how the run ended to FILE, one word:
#                         ran (the status is the command's own), stopped
#                         (124 above) or infrastructure (125 above); nothing
#                         when run.sh itself failed or was interrupted
#   RBOX_VM_KEEP=1        keep the console of a run that passed too
#
# Needs root (Debian's kernels are readable by root only, and the share of /
# must read every file) and the packages scripts/install-deps.sh installs.
set -euo pipefail

me=rbox-vm
outcome() { [ -z "${RBOX_VM_OUTCOME:-}" ] || echo "$1" > "$RBOX_VM_OUTCOME"; }
infra() { echo "$me: $*" >&2; outcome infrastructure; exit 125; }
[ -z "${RBOX_VM_OUTCOME:-}" ] || rm -f -- "$RBOX_VM_OUTCOME"

[ "${1:-}" = -- ] && shift
[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ "$(id -u)" = 0 ] || infra "run as root"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${RBOX_VM_DIR:-$repo/target/vm}
limit=${RBOX_VM_TIMEOUT:-1800}
mem=${RBOX_VM_MEM:-4G}
cpus=${RBOX_VM_CPUS:-2}
[[ $limit =~ ^[1-9][0-9]*$ ]] || infra "RBOX_VM_TIMEOUT must be a number of seconds, not '$limit'"
[[ $cpus =~ ^[1-9][0-9]*$ ]] || infra "RBOX_VM_CPUS must be a number, not '$cpus'"
command -v qemu-system-x86_64 >/dev/null || infra "qemu-system-x86_64 not found (scripts/install-deps.sh)"

# ---- the guest kernel: Debian's, with its modules on the host
if [ -n "${RBOX_VM_KERNEL:-}" ]; then
  kernel=$RBOX_VM_KERNEL
  [[ $kernel == */vmlinuz-* ]] || infra "RBOX_VM_KERNEL must name a /boot/vmlinuz-VERSION file, not '$kernel'"
  kver=${kernel##*/vmlinuz-}
else
  kver=$(for d in /lib/modules/*/; do d=${d%/}; d=${d##*/}; [ -f "/boot/vmlinuz-$d" ] && echo "$d"; done |
    sort -V | tail -n 1)
  [ -n "$kver" ] || infra "no /boot/vmlinuz-X with /lib/modules/X (scripts/install-deps.sh installs linux-image-amd64)"
  kernel=/boot/vmlinuz-$kver
fi
[ -r "$kernel" ] || infra "cannot read the kernel $kernel"
[ -d "/lib/modules/$kver" ] || infra "no /lib/modules/$kver for $kernel: the guest could not load modules"

accel=${RBOX_VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
  # /dev/kvm alone is not proof: some hosts expose it without hardware virt.
  accel=tcg
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then accel=kvm; fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) infra "RBOX_VM_ACCEL must be auto, kvm or tcg, not '$accel'" ;;
esac

# ---- the initramfs: busybox, init.sh, stage2.sh and the modules needed to
# reach the shares (virtio-pci, 9p, overlay). Cached per kernel and inputs.
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || infra "busybox not found (scripts/install-deps.sh installs busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && infra "$busybox is linked dynamically: the initramfs needs busybox-static"

declare -A seen=()
mods=()
# add_mod NAME [optional]: NAME's dependencies first, then NAME (skipped
# when built in).
add_mod() {
  local file dep
  [ -z "${seen[$1]:-}" ] || return 0
  seen[$1]=1
  if ! file=$(modinfo -k "$kver" -n "$1" 2>/dev/null); then
    [ "$2" = optional ] && return 0
    infra "kernel $kver has no module $1"
  fi
  [[ $file == /* ]] || return 0
  for dep in $(modinfo -k "$kver" -F depends "$1" | tr , ' '); do add_mod "$dep"; done
  mods+=("$1=$file")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add_mod "$m"; done
add_mod virtio_rng optional   # entropy for getrandom() early on

key=$({ echo "$kver"; stat -c '%n %s %Y' "$kernel" "$busybox"; printf '%s\n' "${mods[@]}";
        cat "$here/init.sh" "$here/stage2.sh"; } | sha256sum | cut -c1-16)
initrd=$work/cache/initrd-$kver-$key.gz
if [ ! -f "$initrd" ]; then
  mkdir -p "$work/cache"
  tree=$(mktemp -d "$work/cache/.tree.XXXXXX")
  mkdir -p "$tree"/{bin,dev,proc,sys,newroot,lib/modules} "$tree"/mnt/{io,host,rw}
  cp "$busybox" "$tree/bin/busybox"
  cp "$here/init.sh" "$tree/init"
  cp "$here/stage2.sh" "$tree/stage2.sh"
  chmod 0755 "$tree/init"
  : > "$tree/modules"
  for m in "${mods[@]}"; do
    name=${m%%=*} file=${m#*=}
    case $file in
      *.ko) cp "$file" "$tree/lib/modules/$name.ko" ;;
      *.ko.xz) xz -dc "$file" > "$tree/lib/modules/$name.ko" ;;
      *.ko.zst) zstd -qdc "$file" > "$tree/lib/modules/$name.ko" ;;
      *.ko.gz) gzip -dc "$file" > "$tree/lib/modules/$name.ko" ;;
      *) rm -rf "$tree"; infra "module file of an unknown kind: $file" ;;
    esac
    echo "$name" >> "$tree/modules"
  done
  (cd "$tree" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$tree.gz"
  rm -rf "$tree"
  mv -f "$tree.gz" "$initrd"   # atomic: a concurrent run sees all of it or nothing
  find "$work/cache" -maxdepth 1 -name "initrd-$kver-*" ! -name "${initrd##*/}" -delete
fi

# ---- the run's io directory (the guest's writable share)
mkdir -p "$work/runs"
run=$(mktemp -d "$work/runs/run.XXXXXX")
qemu_pid=
tails=()
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  [ ${#tails[@]} -eq 0 ] || kill "${tails[@]}" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "$limit" > "$run/timeout"
# The command as a bash script: cwd, a clean environment, argv, all quoted.
{
  printf 'cd -- %q || exit 126\n' "$PWD"
  printf 'exec env -i --'
  while IFS= read -r -d '' kv; do
    case ${kv%%=*} in
      TMPDIR | XDG_RUNTIME_DIR | DBUS_SESSION_BUS_ADDRESS | SSH_AUTH_SOCK | DISPLAY | \
        WAYLAND_DISPLAY | OLDPWD | SHLVL | _ | RBOX_VM_*) continue ;;
    esac
    [[ ${kv%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    printf ' %q' "$kv"
  done < <(env -0)
  printf ' %q' "$@"
  printf '\n'
} > "$run/cmd.sh"
# /tmp and /run are fresh in the guest: list the top directories under them
# that hold the cwd or the command, for init.sh to bring back.
: > "$run/expose"
for p in "$PWD" "$(command -v -- "$1" 2>/dev/null || true)"; do
  case $p in
    /tmp/?* | /run/?*)
      rest=${p:5}
      top=${p:0:4}/${rest%%/*}
      [ -d "$top" ] || continue
      grep -qxF -- "$top" "$run/expose" || echo "$top" >> "$run/expose" ;;
  esac
done
: > "$run/stdout"
: > "$run/stderr"
: > "$run/console.log"

qemu_opt() { printf '%s' "${1//,/,,}"; }   # commas in qemu option values are doubled
qemu_args=(
  -nodefaults -no-user-config -display none -monitor none -no-reboot
  "${accel_args[@]}" -smp "$cpus" -m "$mem"
  -kernel "$kernel" -initrd "$initrd"
  # Pure cgroup v2; the soft-lockup watchdog reports every CPU's backtrace.
  -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all random.trust_cpu=on softlockup_all_cpu_backtrace=1"
  -serial "file:$(qemu_opt "$run/console.log")"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap"
  -virtfs "local,path=$(qemu_opt "$run"),mount_tag=io,security_model=none"
  -device virtio-rng-pci
)

shown=$*
[ ${#shown} -le 200 ] || shown="${shown:0:200}..."
echo "$me: kernel $kver, $accel, $cpus CPUs, $mem; at most ${limit}s: $shown" >&2
start=$SECONDS
# Boot and power-off take well under 5 minutes even under TCG on a busy host;
# beyond that the guest's own watchdog did not get to report.
timeout -k 10 $((limit + 300)) qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qemu_pid=$!
tail -q -c +1 -s 0.2 --pid="$qemu_pid" -f "$run/stdout" & tails+=($!)
tail -q -c +1 -s 0.2 --pid="$qemu_pid" -f "$run/stderr" >&2 & tails+=($!)
if [ "${RBOX_VM_CONSOLE:-0}" = 1 ]; then
  tail -q -c +1 -s 0.2 --pid="$qemu_pid" -f "$run/console.log" >&2 & tails+=($!)
fi
qrc=0
wait "$qemu_pid" || qrc=$?
qemu_pid=
wait "${tails[@]}" 2>/dev/null || true
tails=()
took=$((SECONDS - start))

# Once the guest has said it started the command, nothing that follows is
# the infrastructure's: a kernel panic, a hang or a lost status is a failure.
if [ -e "$run/started" ] && rc=$(cat "$run/rc" 2>/dev/null) && [[ $rc =~ ^[0-9]+$ ]]; then
  outcome ran
  if [ -e "$run/timed-out" ]; then
    echo "$me: TIMEOUT: the command still ran after ${limit}s" >&2
    outcome stopped
  fi
elif [ -e "$run/started" ]; then
  rc=124
  outcome stopped
  echo "$me: the guest stopped before the command ended (qemu status $qrc after ${took}s)" >&2
else
  rc=125
  outcome infrastructure
  echo "$me: INFRASTRUCTURE: the guest never started the command (qemu status $qrc after ${took}s):" \
    "$(cat "$run/boot-error" 2>/dev/null || echo 'no boot error reported')" >&2
  tail -n 20 "$run/qemu.log" >&2
fi
echo "$me: exit status $rc after ${took}s" >&2
# The kernel's complaints (with their backtraces) are shown and the console
# kept on any failure, and also after a pass: a soft lockup the guest got
# over is still worth reading.
problems='soft lockup|rcu.*stall|blocked for more than|BUG:|Oops|Kernel panic|sysrq: Show|TIMED OUT|BOOT FAILED'
first=$(grep -n -m 1 -E "$problems" "$run/console.log" | cut -d: -f1 || true)
if [ "$rc" != 0 ] || [ -n "$first" ] || [ "${RBOX_VM_KEEP:-0}" = 1 ]; then
  [ "$rc" = 0 ] && [ -n "$first" ] && echo "$me: the command passed, but the guest kernel complained:" >&2
  if [ -n "$first" ]; then
    echo "---- guest console from line $first (kernel problems)" >&2
    tail -n +"$first" "$run/console.log" | head -n 200 >&2
  fi
  lines=$(wc -l < "$run/console.log")
  if [ "$rc" != 0 ] && { [ -z "$first" ] || [ $((lines - first)) -ge 200 ]; }; then
    echo "---- guest console, last 30 lines" >&2
    tail -n 30 "$run/console.log" >&2
  fi
  mkdir -p "$work/consoles"
  kept=$work/consoles/$(date -u +%Y%m%dT%H%M%SZ)-$$.log
  cp "$run/console.log" "$kept"
  echo "---- whole console kept in $kept" >&2
fi
exit "$rc"
