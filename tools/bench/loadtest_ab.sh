#!/usr/bin/env bash
# Compares `syncnode loadtest` between this checkout and an earlier commit in
# one run: builds syncnode at REV in a scratch worktree, then runs the
# two binaries alternately (RUNS each, the same config) so that the noise of
# a shared machine falls on both alike, and prints every run, the medians
# and the ratio this/REV. A ratio is what to compare, never a figure alone.
#
#   tools/bench/loadtest_ab.sh REV [CONFIG] [RUNS]
#   tools/bench/loadtest_ab.sh 50c2898 config/loadtest.ini 5
#
# REV may also be a syncnode binary built before (then nothing is built).
# Needs build/syncnode of this checkout (tools/setup.sh syncnode).
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: loadtest_ab.sh REV [CONFIG] [RUNS]}
config=${2:-config/loadtest.ini}
runs=${3:-5}
here=$PWD/build/syncnode
[ -x "$here" ] || { echo "loadtest_ab: build syncnode first (tools/setup.sh syncnode)"; exit 1; }

scratch=$(mktemp -d)
trap 'git worktree remove --force "$scratch/src" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
if [ -f "$rev" ] && [ -x "$rev" ]; then # a syncnode built before: no build
  there=$rev
else
  git worktree add -q --detach "$scratch/src" "$rev"
  echo "loadtest_ab: building syncnode at $rev"
  { cmake -S "$scratch/src" -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release \
      -DMEMSYNC_TESTS=OFF ${MEMSYNC_CMAKE_ARGS:-} &&
    cmake --build "$scratch/build" -j2 --target syncnode; } >"$scratch/build.log" 2>&1 \
    || { tail -30 "$scratch/build.log"; echo "loadtest_ab: cannot build $rev"; exit 1; }
  there=$scratch/build/syncnode
fi

# One run: "p50 p99 mean push-p99 cpu-seconds": propagation (ms; the mean
# is finer than the histogram's buckets), the push round trip's p99 (ms),
# and the CPU the whole process used (user + system).
measure() {
  local out=$scratch/out.txt TIMEFORMAT='%U %S' cpu
  cpu=$( { time "$1" loadtest --config "$config" --loadtest.progress-interval=0ms \
             --loadtest.report-json= --loadtest.report-svg= >"$out" 2>&1; } 2>&1 )
  grep -q "lost 0, duplicated 0, final values wrong 0" "$out" \
    || { echo "loadtest_ab: $1 did not converge:"; tail -20 "$out"; exit 1; }
  awk -v cpu="$cpu" '
    /^  propagation/ { p50 = $2; p99 = $4; mean = $7 }
    /^  push round trip/ { push = $6 }
    END { split(cpu, c, " "); printf "%s %s %s %s %.2f\n", p50, p99, mean, push, c[1] + c[2] }' "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$scratch/this" ; : >"$scratch/that"
printf '%-6s %4s %10s %10s %10s %12s %8s\n' who run "p50 ms" "p99 ms" "mean ms" "push p99" "cpu s"
for i in $(seq 1 "$runs"); do
  for who in that this; do
    bin=$there; [ $who = this ] && bin=$here
    line=$(measure "$bin")
    echo "$line" >>"$scratch/$who"
    # shellcheck disable=SC2086
    printf '%-6s %4d %10s %10s %10s %12s %8s\n' "$who" "$i" $line
  done
done
echo "medians of $runs runs each ($config); this = $(git rev-parse --short HEAD), that = $rev"
for col in 1:"propagation p50" 2:"propagation p99" 3:"propagation mean" \
           4:"push round trip p99" 5:"cpu seconds"; do
  n=${col%%:*}
  a=$(cut -d' ' -f"$n" "$scratch/this" | median)
  b=$(cut -d' ' -f"$n" "$scratch/that" | median)
  awk -v a="$a" -v b="$b" -v name="${col#*:}" \
    'BEGIN { printf "  %-20s this %8.2f  that %8.2f  ratio %.2fx\n", name, a, b, a / b }'
done
