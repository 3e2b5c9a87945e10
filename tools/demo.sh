#!/usr/bin/env bash
# The main job: sets up, builds, then starts a server node (embedded SQLite)
# and two client nodes, alice and bob, as separate processes over loopback,
# plays a code review between them, shows what each sees and how fast each
# change reached the other, and checks that both converged to the server's
# state (non-zero exit if not). Every process it starts is stopped again.
#   tools/demo.sh [CHANGES]                 as above (200 changes measured)
#   tools/demo.sh --trace [DIR] [CHANGES]   also records actor traces of every
#                                           node into DIR (build/demo-trace)
#                                           and shows the trace tool on them
set -euo pipefail
cd "$(dirname "$0")/.."
trace_dir=""
if [ "${1:-}" = "--trace" ]; then
  shift
  trace_dir="build/demo-trace"
  if [ -n "${1:-}" ] && ! [[ "$1" =~ ^[0-9]+$ ]]; then trace_dir="$1"; shift; fi
fi
changes="${1:-200}"
if [ -z "$trace_dir" ]; then
  tools/setup.sh syncnode syncdemo >/dev/null
  exec build/tools/syncdemo build/syncnode config "$changes"
fi
tools/setup.sh syncnode syncdemo trace >/dev/null
mkdir -p "$trace_dir"
rm -f "$trace_dir"/*.jsonl
build/tools/syncdemo build/syncnode config "$changes" --trace "$trace_dir"
echo
echo "== build/tools/trace stats $trace_dir/*.jsonl"
build/tools/trace stats "$trace_dir"/*.jsonl
echo
echo "== build/tools/trace path --entity c1 $trace_dir/*.jsonl"
build/tools/trace path --entity c1 "$trace_dir"/*.jsonl
build/tools/trace chrome "$trace_dir"/*.jsonl -o "$trace_dir/chrome.json" 2>&1 | grep '^wrote'
build/tools/trace svg --entity c1 "$trace_dir"/*.jsonl -o "$trace_dir/c1.svg" 2>&1 | grep '^wrote'
