#!/usr/bin/env bash
# Benchmark: one sweep of N real sshd test hosts (default 200, every 10th with
# KESL installed). Prints hosts/s, client CPU seconds and peak RSS of
# `fleetsweep scan`. A figure, not a pass/fail test. Run as root.
# Usage: tests/bench/sweep.sh [HOSTS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-200}
conc=${2:-100}
scripts/setup
cargo build --release --quiet -p fleetsweep -p fleetsweep-e2e
dir=$(mktemp -d /tmp/fleetsweep-bench.XXXXXX)
trap 'target/release/testfleet down --dir "$dir" >/dev/null 2>&1 || true' EXIT
t0=$(date +%s.%N)
target/release/testfleet up --dir "$dir" --subnet 230 --generated "$hosts" --kaspersky-every 10 --detach >/dev/null
t1=$(date +%s.%N)
set +e
/usr/bin/time -v -o "$dir/time.txt" target/release/fleetsweep scan -i "$dir/inventory.yaml" \
  --concurrency "$conc" --report "$dir/report.yaml" -q
code=$?
set -e
if [ "$code" = 2 ]; then echo "fleetsweep failed (exit 2)" >&2; exit 1; fi
wall=$(grep "Elapsed (wall clock)" "$dir/time.txt" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
user=$(grep "User time" "$dir/time.txt" | awk '{print $NF}')
sys=$(grep "System time" "$dir/time.txt" | awk '{print $NF}')
rss=$(grep "Maximum resident" "$dir/time.txt" | awk '{print $NF}')
scanned=$(grep -m1 "^    scanned:" "$dir/report.yaml" | awk '{print $2}')
affected=$(grep -m1 "^    affected:" "$dir/report.yaml" | awk '{print $2}')
grep -E "^    (unreachable|auth_failed|host_key_rejected|timed_out|probe_failed):" "$dir/report.yaml" | grep -v ": 0$" | sed "s/^ */not scanned: /" || true
awk -v h="$hosts" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v c="$conc" -v t0="$t0" -v t1="$t1" \
    -v sc="$scanned" -v af="$affected" 'BEGIN {
  printf "hosts: %d (scanned %d, affected %d), concurrency %d, bring-up %.1fs\n", h, sc, af, c, t1 - t0
  printf "sweep wall: %.2fs  => %.1f hosts/s\n", w, h / w
  printf "client CPU: %.2fs (user %.2f + sys %.2f) => %.1f ms/host\n", u + s, u, s, (u + s) * 1000 / h
  printf "peak RSS: %.1f MiB\n", r / 1024
}'
