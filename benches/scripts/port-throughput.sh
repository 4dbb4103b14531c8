#!/usr/bin/env bash
# What a published port costs a small-request HTTP server: busybox httpd
# in a container, 10k requests for a 6-byte file with ApacheBench (`ab`,
# apache2-utils; scripts/install-deps.sh), through `-p` against the same
# server with `--network host`, R rounds (default 5) interleaved (the
# order rotates each round), medians of requests per second printed.
# Two ways in, each against host networking at the same address:
#   - 127.0.0.1: `-p` is the nftables DNAT of the host's own connections
#     (output hook; route_localnet on the bridge, loopback sources
#     masqueraded), host networking straight to the server;
#   - the host's own address (198.18.0.1 on a veth of the
#     namespace, the RFC 2544 benchmark range): `-p` is the nftables DNAT
#     in the kernel, over the bridge and the container's veth.
# (Until 2026-12 rrun relayed 127.0.0.1 in userspace, as docker-proxy:
# RBOX_BIN pointing at such a build measures that way.)
# Runs in a network namespace of its own (scripts/in-netns.sh): the
# bridge, the rules, the dummy interface and all the traffic stay in it.
# As root:
#   bash benches/scripts/port-throughput.sh [ROUNDS] [REQUESTS] [CONCURRENCY]
# Uses target/release (or $RBOX_BIN): rrun, rbuild, mkfixtures (bash
# scripts/build-release.sh), and a store in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${RBOX_IN_NETNS:-}" != 1 ]; then
  exec scripts/in-netns.sh bash "$0" "$@"
fi
rounds=${1:-5}
reqs=${2:-10000}
conc=${3:-4}
bin=${RBOX_BIN:-target/release}
command -v ab >/dev/null || { echo "ab is missing (apt-get install apache2-utils)" >&2; exit 1; }
store=$(mktemp -d)
rr() { "$bin/rrun" --root "$store" "$@"; }
trap 'rr rm -f web-p web-host >/dev/null 2>&1 || true; rm -rf "$store"' EXIT
"$bin/mkfixtures" busybox-tar "$store/bb.tar.zst" >/dev/null
"$bin/rbuild" --root "$store" import "$store/bb.tar.zst" busybox >/dev/null

# This namespace's "external" address, and TIME_WAIT reuse for the client's
# ports (this namespace's own sysctl): 10k connections per ab run.
ip link add bench0 type veth peer name bench1
ip addr add 198.18.0.1/32 dev bench0
ip link set bench0 up
ip link set bench1 up
sysctl -q -w net.ipv4.tcp_tw_reuse=1

serve() { echo "mkdir /www && echo hello > /www/index.html && exec httpd -f -p $1 -h /www"; }
rr run -d --name web-p -p 8080:80 busybox sh -c "$(serve 80)" >/dev/null
rr run -d --name web-host --network host busybox sh -c "$(serve 8081)" >/dev/null
for url in http://127.0.0.1:8080/ http://198.18.0.1:8080/ http://127.0.0.1:8081/ http://198.18.0.1:8081/; do
  for _ in $(seq 50); do
    if [ "$(wget -q -O - "$url" 2>/dev/null || curl -fsS "$url" 2>/dev/null)" = hello ]; then continue 2; fi
    sleep 0.1
  done
  echo "no answer from $url" >&2
  exit 1
done

declare -A url=(
  [p-lo]=http://127.0.0.1:8080/index.html
  [host-lo]=http://127.0.0.1:8081/index.html
  [p-addr]=http://198.18.0.1:8080/index.html
  [host-addr]=http://198.18.0.1:8081/index.html
)
kinds=(p-lo host-lo p-addr host-addr)
one() { # prints requests per second
  local o
  o=$(ab -q -n "$reqs" -c "$conc" "${url[$1]}" 2>&1) || { echo "ab $1: $o" >&2; exit 1; }
  if ! grep -q "^Failed requests: *0$" <<<"$o"; then echo "ab $1: $o" >&2; exit 1; fi
  awk '/^Requests per second:/ {print $4}' <<<"$o"
}
for k in "${kinds[@]}"; do ab -q -n 1000 -c "$conc" "${url[$k]}" >/dev/null; done
declare -A t
for i in $(seq "$rounds"); do
  for j in 0 1 2 3; do
    k=${kinds[$(((i + j) % 4))]}
    t[$k]+="$(one "$k") "
  done
done
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'; }
med() { printf '%s\n' ${t[$1]} | median; }
echo "busybox httpd, ab -n $reqs -c $conc, $rounds rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
for w in lo addr; do
  p=$(med "p-$w") h=$(med "host-$w")
  case $w in lo) at="127.0.0.1 (-p: nftables DNAT in output)" ;; *) at="198.18.0.1 (-p: nftables DNAT)" ;; esac
  echo "  $at: -p median $p req/s, --network host median $h req/s, ratio $(awk -v a="$p" -v b="$h" 'BEGIN {printf "%.3f", a/b}')"
  echo "    -p runs:   ${t[p-$w]}"
  echo "    host runs: ${t[host-$w]}"
done
