#!/usr/bin/env bash
# Benchmark: does `fleetsweep serve` keep its memory sweep after sweep? Runs
# serve against N simulated hosts (tests/src/sim, `fleetsim`, in a network
# namespace of its own) with sweeps back to back, samples its RSS every
# second for SECONDS, and prints the RSS at the end of each sweep and the
# lowest and highest sample after the first sweep. Figures, not a pass/fail
# test. Run as root.
# Usage: tests/bench/serve-rss.sh [HOSTS] [SECONDS] (default: 10000 300)
# Env: INTERVAL (time between sweeps, default 5s), CONCURRENCY (default 200),
# BENCH_FLEETSWEEP=BINARY (measure that build, not rebuilt)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
secs=${2:-300}
interval=${INTERVAL:-5s}
conc=${CONCURRENCY:-200}
command -v ip >/dev/null || { echo "serve-rss.sh needs ip (apt-get install -y iproute2)" >&2; exit 1; }
fleetsweep=${BENCH_FLEETSWEEP:-target/release/fleetsweep}
[ -n "${BENCH_FLEETSWEEP:-}" ] || cargo build --release --quiet -p fleetsweep
[ -x "$fleetsweep" ] || { echo "serve-rss.sh: $fleetsweep is not an executable" >&2; exit 1; }
cargo build --release --quiet -p fleetsweep-e2e --bin fleetsim
# shellcheck source=tests/bench/sim-lib.sh
. tests/bench/sim-lib.sh
dir=$(mktemp -d /tmp/fleetsweep-serve-rss.XXXXXX)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  sim_cleanup
}
trap cleanup EXIT
sim_netns "fleetsim-serve-$$"
target/release/fleetsim gen --hosts "$n" --dir "$dir" --seed 42 >/dev/null
sim_start "$dir"
FLEETSWEEP_LOG=info ip netns exec "$sim_ns" "$fleetsweep" serve -i "$dir/inventory.yaml" \
  --interval "$interval" --concurrency "$conc" --listen 127.0.0.1:9911 \
  --state "$dir/state.db" --log-format json >"$dir/serve.log" 2>&1 &
serve_pid=$!
# `ip netns exec` execs the command: the pid is serve's own.
: >"$dir/rss.txt"
for i in $(seq "$secs"); do
  kill -0 "$serve_pid" 2>/dev/null || { echo "serve stopped: $(tail -3 "$dir/serve.log")" >&2; exit 1; }
  rss=$(awk '/VmRSS/{print $2}' "/proc/$serve_pid/status")
  sweeps=$(grep -c '"sweep finished"' "$dir/serve.log" || true)
  echo "$i $rss $sweeps" >>"$dir/rss.txt"
  sleep 1
done
echo "serve, $n simulated hosts, sweeps every $interval, concurrency $conc, RSS sampled each second for ${secs}s"
awk '
  $3 != last { if (NR > 1) printf "sweep %d finished: %.1f MB\n", $3, $2 / 1000; last = $3 }
  $3 >= 1 { if (lo == "" || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
  END { printf "after the first sweep: lowest %.1f MB, highest %.1f MB\n", lo / 1000, hi / 1000 }
' "$dir/rss.txt"
echo "files kept in $dir"
