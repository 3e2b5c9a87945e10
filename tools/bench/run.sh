#!/usr/bin/env bash
# Builds the benchmarks in build-bench/ (Release, tests off) and runs them:
#   store_bench  get vs SQLite point query; put with and without a subscriber
#   flush_bench  local_database::append vs raw batched SQLite writes; coalescing
#   load_bench   start-up load of 1M entities; resident memory per entity
#   log_bench    group commit of the replication log vs one commit per push
#   backend_bench  SQLite vs PostgreSQL: changes/s per push size, pull latency
#   multinode_bench  propagation through one node vs two nodes on PostgreSQL
# (the last two start a throwaway PostgreSQL cluster, as the tests do).
#   trace_bench  throughput with actor tracing off, sampled and all
#   guard_bench  round trip and push throughput through the network front (and TLS) vs without
#   large_state_bench  a fresh client pulling 1M entities vs a plain SQLite load
# Each program prints "SUMMARY" lines with ratios against the baseline it
# measured in the same run; they are repeated at the end. Extra arguments go
# to every program (e.g. --benchmark_filter=get).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build-bench
cmake -S . -B "$build" -DMEMSYNC_BENCHMARKS=ON -DMEMSYNC_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
programs="store_bench flush_bench load_bench log_bench backend_bench trace_bench guard_bench"
# shellcheck disable=SC2086
nice -n 10 cmake --build "$build" -j2 --target $programs multinode_bench syncnode

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for prog in $programs; do
  echo "== $prog"
  "$build/tools/bench/$prog" --benchmark_counters_tabular=true "$@" | tee -a "$log"
  echo
done
echo "== large_state_bench"
nice -n 10 cmake --build "$build" -j2 --target large_state_bench
"$build/tools/bench/large_state_bench" | tee -a "$log"
echo

echo "== multinode_bench"
"$build/tools/bench/multinode_bench" "$build/syncnode" config | tee -a "$log"
echo

echo "== summary"
grep '^SUMMARY ' "$log" | sed 's/^SUMMARY /  /'
