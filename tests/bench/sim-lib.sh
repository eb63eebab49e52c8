# Sourced by the simulated-fleet benchmarks (scale.sh, serve-rss.sh): a
# network namespace of their own, and the simulator (`fleetsim serve`) in it.
#   sim_netns NAME       create the namespace (loopback up) and make room for many sockets
#   sim_start DIR ARGS.. start `fleetsim serve --dir DIR ARGS..` in it; wait until it is ready
#   sim_stop             stop the simulator
#   sim_cleanup          stop it and delete the namespace (for the caller's EXIT trap)
sim_pid=
sim_ns=
sim_netns() {
  sim_ns=$1
  ip netns add "$sim_ns"
  ip -n "$sim_ns" link set lo up
  # A sweep opens many sockets at once.
  ulimit -n 20000 2>/dev/null || true
}
sim_start() {
  local dir=$1
  shift
  ip netns exec "$sim_ns" target/release/fleetsim serve --dir "$dir" "$@" >"$dir/sim.out" 2>"$dir/sim.err" &
  sim_pid=$!
  for _ in $(seq 100); do grep -q ready "$dir/sim.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$dir/sim.out" || { echo "fleetsim did not start: $(cat "$dir/sim.err")" >&2; exit 1; }
}
sim_stop() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=
  fi
}
sim_cleanup() {
  sim_stop
  if [ -n "$sim_ns" ]; then ip netns del "$sim_ns" 2>/dev/null || true; fi
}
