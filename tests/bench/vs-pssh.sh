#!/usr/bin/env bash
# Benchmark: client cost per host, fleetsweep against parallel-ssh (libssh2),
# on the same N real sshd test hosts, same key, same concurrency.
#
# fleetsweep runs its full probe (packages, services, processes, paths,
# catalog matching, report); parallel-ssh runs only `dpkg-query -W` and reads
# its output. Each run is timed with /usr/bin/time -v, back to back, RUNS
# times; the script prints each run and the median of each figure: hosts/s,
# throughput ratio (fleetsweep / parallel-ssh), client CPU ms per host and
# peak RSS. A figure, not a pass/fail test. Run as root.
#
# The test hosts' sshd run on the same cores as both clients: wall-clock
# figures include the hosts' work, CPU and RSS figures are the client's only.
# A fleet of more than 245 hosts goes on in the next subnets (230, 231, 232 for 500).
#
# Usage: tests/bench/vs-pssh.sh [HOSTS] [CONCURRENCY] [RUNS]
# parallel-ssh is installed from PyPI into tests/bench/.venv when missing.
# To compare builds on one fleet: BENCH_FLEET=DIR (a fleet left up by
# `testfleet up --detach --generated HOSTS`, not stopped here) and
# BENCH_FLEETSWEEP=BINARY (not rebuilt).
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-500}
conc=${2:-$hosts}
runs=${3:-3}
fleetsweep=${BENCH_FLEETSWEEP:-target/release/fleetsweep}
scripts/setup
if [ -z "${BENCH_FLEETSWEEP:-}" ]; then
  cargo build --release --quiet -p fleetsweep -p fleetsweep-e2e
fi

venv=tests/bench/.venv
if ! "$venv/bin/python" -c 'import pssh.clients' >/dev/null 2>&1; then
  echo "installing parallel-ssh into $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet parallel-ssh
fi

# Descriptors: one socket per connection on both sides, and the hosts' sshd.
ulimit -n 65536 2>/dev/null || true

if [ -n "${BENCH_FLEET:-}" ]; then
  dir=$BENCH_FLEET
else
  dir=$(mktemp -d /tmp/fleetsweep-vs-pssh.XXXXXX)
  trap 'target/release/testfleet down --dir "$dir" >/dev/null 2>&1 || true' EXIT
  t0=$(date +%s.%N)
  target/release/testfleet up --dir "$dir" --subnet 230 --generated "$hosts" --kaspersky-every 10 --detach >/dev/null
  t1=$(date +%s.%N)
  echo "$hosts test hosts up in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s" >&2
fi
echo "$fleetsweep vs parallel-ssh: $hosts hosts, concurrency $conc, $runs runs" >&2

# wall(s) cpu(s) rss(KiB) from a `time -v` file.
figures() {
  local wall user sys rss
  wall=$(grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  user=$(grep "User time" "$1" | awk '{print $NF}')
  sys=$(grep "System time" "$1" | awk '{print $NF}')
  rss=$(grep "Maximum resident" "$1" | awk '{print $NF}')
  echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}') $rss"
}

# Both clients get 30s to connect and authenticate (parallel-ssh's timeout
# below): with hundreds of handshakes at once on shared cores, the
# harness's 5s is shorter than the hosts' own sshd take to answer.
sed -e 's/^  connect_timeout: .*/  connect_timeout: 30s/' -e 's/^  host_timeout: .*/  host_timeout: 120s/' \
  "$dir/inventory.yaml" >"$dir/bench-inventory.yaml"

: >"$dir/results.txt"
for run in $(seq 1 "$runs"); do
  set +e
  /usr/bin/time -v -o "$dir/fs-time.txt" "$fleetsweep" scan -i "$dir/bench-inventory.yaml" \
    --concurrency "$conc" --report "$dir/report.yaml" -q
  code=$?
  set -e
  if [ "$code" = 2 ]; then echo "fleetsweep failed (exit 2)" >&2; exit 1; fi
  scanned=$(grep -m1 "^    scanned:" "$dir/report.yaml" | awk '{print $2}')
  grep -E "^    (unreachable|auth_failed|host_key_rejected|timed_out|probe_failed):" "$dir/report.yaml" \
    | grep -v ": 0$" | sed "s/^ */fleetsweep not scanned: /" >&2 || true

  /usr/bin/time -v -o "$dir/ps-time.txt" "$venv/bin/python" tests/bench/pssh_run.py \
    "$dir/inventory.yaml" "$conc" >"$dir/ps-out.txt"
  read -r _ ps_ok _ ps_failed _ _ <"$dir/ps-out.txt"
  [ "$ps_failed" = 0 ] || echo "parallel-ssh: $ps_failed hosts failed" >&2
  # Hosts that were not reached make a run fast and cheap: its figures would mislead.
  if [ "${scanned:-0}" = 0 ] || [ "${ps_ok:-0}" = 0 ]; then
    echo "run $run: no host was reached (fleetsweep scanned ${scanned:-0}, parallel-ssh ${ps_ok:-0}):" \
      "are the test hosts of $dir up? (target/release/testfleet up --dir DIR ... --detach)" >&2
    exit 1
  fi

  read -r fw fc fr <<<"$(figures "$dir/fs-time.txt")"
  read -r pw pc pr <<<"$(figures "$dir/ps-time.txt")"
  echo "$fw $fc $fr $pw $pc $pr $(awk -v a="$pw" -v b="$fw" 'BEGIN{print a/b}')" >>"$dir/results.txt"
  awk -v run="$run" -v h="$hosts" -v sc="$scanned" -v ok="$ps_ok" \
      -v fw="$fw" -v fc="$fc" -v fr="$fr" -v pw="$pw" -v pc="$pc" -v pr="$pr" 'BEGIN {
    printf "run %d: fleetsweep %d/%d scanned, %.1f hosts/s, %.2f ms CPU/host, %.1f MiB | parallel-ssh %d ok, %.1f hosts/s, %.2f ms CPU/host, %.1f MiB | ratio %.2fx\n",
      run, sc, h, h / fw, fc * 1000 / h, fr / 1024, ok, h / pw, pc * 1000 / h, pr / 1024, pw / fw
  }'
done

# Medians over the runs, column by column.
median() { cut -d' ' -f"$1" "$dir/results.txt" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
awk -v h="$hosts" -v c="$conc" -v n="$runs" -v fw="$(median 1)" -v fc="$(median 2)" -v fr="$(median 3)" \
    -v pw="$(median 4)" -v pc="$(median 5)" -v pr="$(median 6)" -v ratio="$(median 7)" 'BEGIN {
  printf "\nmedian of %d runs, %d hosts, concurrency %d:\n", n, h, c
  printf "               hosts/s  CPU ms/host  peak RSS MiB\n"
  printf "fleetsweep    %8.1f  %11.2f  %12.1f\n", h / fw, fc * 1000 / h, fr / 1024
  printf "parallel-ssh  %8.1f  %11.2f  %12.1f\n", h / pw, pc * 1000 / h, pr / 1024
  printf "throughput ratio (fleetsweep / parallel-ssh, median of the runs): %.2fx\n", ratio
}'
