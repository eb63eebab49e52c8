#!/usr/bin/env bash
# Benchmark: what happens after a sweep, at fleet scale. N synthetic host
# results (2% with Kaspersky findings and their evidence, 4 labels each, a few
# failed hosts) go through the sweep's result collection, the SQLite state
# store, the YAML report and metrics files and the report formats; each step
# prints its time, its exact heap peak (a counting allocator) and its VmHWM.
# A figure, not a pass/fail test. No network, no root.
# Usage: tests/bench/pipeline.sh [N ...]   (default: 1000 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
cargo build --quiet --example pipeline_bench
for n in "${sizes[@]}"; do
  dir=$(mktemp -d /tmp/fleetsweep-pipeline.XXXXXX)
  /usr/bin/time -f "whole run: %e s wall, max RSS %M KiB" target/debug/examples/pipeline_bench "$n" "$dir"
  rm -rf "$dir"
  echo
done
