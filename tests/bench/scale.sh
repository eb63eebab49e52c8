#!/usr/bin/env bash
# Benchmark: sweeps of 1k, 10k and 100k simulated SSH hosts (tests/src/sim,
# `fleetsim`: one process answering as every host, inside a network namespace
# of its own) with the release `fleetsweep scan`, each with a fresh SQLite
# state store, the YAML report and the metrics textfile. Prints, per size:
# wall time, hosts/s, client CPU per host, peak RSS, state step time, state
# file, report and metrics sizes. Figures, not a pass/fail test. Run as root.
# Usage: tests/bench/scale.sh [SIZES...] (default: 1000 10000 100000)
# Env: CONCURRENCY (default 200), LATENCY_MS (default 0), WORKERS (simulator threads, default 1),
# AFFECTED_EVERY=N (every N-th host has the banned product; default 20, 1: every host),
# BASTION=1 (every host but the first reached through the first, a simulated bastion),
# SHUFFLE=1 (the inventory's hosts in a random order, not by name: the report is still by name),
# HASHED=1 (known_hosts hashed by OpenSSH's `ssh-keygen -H`, as Debian's HashKnownHosts does),
# ACCEPT_NEW=1 (known_hosts emptied: a first contact, every key accepted and recorded by
# --accept-new-host-keys into the size's directory),
# BENCH_FLEETSWEEP=BINARY (measure that build, not rebuilt; to compare builds on one machine),
# RSS_EVERY=SECONDS (also sample the scanner's VmRSS that often, from outside the measured
# process tree, so its CPU is not counted; prints the highest sample of each tenth of the run:
# the first tenths are loading, the last the report, state step and outputs; the samples stay
# in the size's directory as rss.log, "ms kB" a line)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
conc=${CONCURRENCY:-200}
latency=${LATENCY_MS:-0}
workers=${WORKERS:-1}
bastion=()
[ "${BASTION:-0}" = 0 ] || bastion=(--bastion)
for tool in ip /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "scale.sh needs $tool (apt-get install -y iproute2 time)" >&2; exit 1; }
done
# Two builds: one `-p fleetsweep -p fleetsweep-e2e` would unify their features
# (nix) and measure a fleetsweep built differently from the one users get.
fleetsweep=${BENCH_FLEETSWEEP:-target/release/fleetsweep}
[ -n "${BENCH_FLEETSWEEP:-}" ] || cargo build --release --quiet -p fleetsweep
[ -x "$fleetsweep" ] || { echo "scale.sh: $fleetsweep is not an executable" >&2; exit 1; }
cargo build --release --quiet -p fleetsweep-e2e --bin fleetsim
# shellcheck source=tests/bench/sim-lib.sh
. tests/bench/sim-lib.sh
# VmRSS of the scanner (the child of /usr/bin/time, pid $1) every $3 seconds, "ms kB" a
# line to $2, until it ends.
sample_rss() {
  local scanner="" started
  while [ -z "$scanner" ] && kill -0 "$1" 2>/dev/null; do
    scanner=$(pgrep -P "$1" | head -1)
    [ -n "$scanner" ] || sleep 0.001
  done
  [ -n "$scanner" ] || return 0
  started=$(date +%s%N)
  : >"$2"
  while kill -0 "$scanner" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$scanner/status" 2>/dev/null)
    [ -z "$rss" ] || echo "$((($(date +%s%N) - started) / 1000000)) $rss" >>"$2"
    sleep "$3"
  done
}
root=$(mktemp -d /tmp/fleetsweep-scale.XXXXXX)
trap sim_cleanup EXIT
sim_netns "fleetsim-bench-$$"
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
printf '%-7s %8s %8s %10s %9s %9s %10s %10s %10s %10s\n' hosts wall_s hosts/s cpu_ms/host rss_MiB state_ms outputs_ms state_MiB report_MiB metrics_KiB
for n in "${sizes[@]}"; do
  dir="$root/$n"
  target/release/fleetsim gen --hosts "$n" --dir "$dir" --seed 42 --latency-ms "$latency" \
    --affected-every "${AFFECTED_EVERY:-20}" "${bastion[@]}" >/dev/null
  if [ "${SHUFFLE:-0}" != 0 ]; then
    python3 - "$dir/inventory.yaml" <<'PY'
import random, sys
path = sys.argv[1]
head, hosts = open(path).read().split("\nhosts:\n", 1)
entries = ["  - " + e for e in hosts.split("  - ") if e]
random.Random(42).shuffle(entries)
open(path, "w").write(head + "\nhosts:\n" + "".join(entries))
PY
  fi
  if [ "${HASHED:-0}" != 0 ]; then
    ssh-keygen -q -H -f "$dir/known_hosts" >/dev/null 2>&1 || { echo "scale.sh: ssh-keygen -H failed" >&2; exit 1; }
    rm -f "$dir/known_hosts.old"
  fi
  accept=()
  if [ "${ACCEPT_NEW:-0}" != 0 ]; then
    : >"$dir/known_hosts"
    accept=(--accept-new-host-keys "$dir/learned_hosts")
  fi
  sim_start "$dir" --workers "$workers"
  set +e
  FLEETSWEEP_LOG="warn,fleetsweep::pipeline=info" ip netns exec "$sim_ns" \
    /usr/bin/time -v -o "$dir/time.txt" "$fleetsweep" scan -i "$dir/inventory.yaml" \
    --concurrency "$conc" --state "$dir/state.db" --report "$dir/report.yaml" \
    --metrics-file "$dir/metrics.prom" --no-progress --log-format json "${accept[@]}" 2>"$dir/scan.log" >"$dir/summary.txt" &
  timed=$!
  sampler=
  if [ -n "${RSS_EVERY:-}" ]; then
    sample_rss "$timed" "$dir/rss.log" "$RSS_EVERY" &
    sampler=$!
  fi
  wait "$timed"
  code=$?
  [ -z "$sampler" ] || wait "$sampler"
  set -e
  sim_stop
  if [ "$code" = 2 ]; then echo "fleetsweep failed (exit 2): $(tail -3 "$dir/scan.log")" >&2; exit 1; fi
  wall=$(grep "Elapsed (wall clock)" "$dir/time.txt" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  user=$(grep "User time" "$dir/time.txt" | awk '{print $NF}')
  sys=$(grep "System time" "$dir/time.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident" "$dir/time.txt" | awk '{print $NF}')
  state_ms=$(grep 'state step done' "$dir/scan.log" | grep -o '"ms":[0-9]*' | head -1 | cut -d: -f2 || true)
  out_ms=$(grep 'outputs written' "$dir/scan.log" | grep -o '"ms":[0-9]*' | head -1 | cut -d: -f2 || true)
  scanned=$(grep -m1 "^    scanned:" "$dir/report.yaml" | awk '{print $2}' || true)
  affected=$(grep -m1 "^    affected:" "$dir/report.yaml" | awk '{print $2}' || true)
  awk -v h="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v sm="${state_ms:-NA}" -v om="${out_ms:-NA}" \
      -v db="$(size "$dir/state.db")" -v rep="$(size "$dir/report.yaml")" -v met="$(size "$dir/metrics.prom")" 'BEGIN {
    printf "%-7d %8.1f %8.1f %10.2f %9.1f %9s %10s %10.1f %10.1f %10.1f\n", h, w, h / w, (u + s) * 1000 / h, r / 1024, sm, om, db / 1048576, rep / 1048576, met / 1024
  }'
  echo "        (scanned $scanned, affected $affected, exit $code; simulator: $(tail -1 "$dir/sim.err" | sed 's/^fleetsim: //'))"
  if [ -s "$dir/rss.log" ]; then
    echo "        RSS by tenth of the run, highest sample (MB): $(awk '{ t[NR] = $1; r[NR] = $2 } END {
      for (i = 1; i <= NR; i++) { k = int(10 * (t[i] - t[1]) / (t[NR] - t[1] + 1)); if (r[i] > m[k]) m[k] = r[i] }
      for (k = 0; k < 10; k++) printf "%.1f ", m[k] / 1000 }' "$dir/rss.log")"
  fi
done
echo "files kept in $root"
