#!/usr/bin/env bash
# Builds the fuzz targets (clang + libFuzzer, with AddressSanitizer and
# UBSan) into build-fuzz/ and runs each for a bounded time, starting from
# its corpus in tests/fuzz/corpus/NAME. New inputs go to a scratch
# directory, so the repository's corpus changes only by hand: a crashing
# input (libFuzzer writes crash-*) belongs there as a regression case.
#   tools/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]    (default 20 s, all)
# A long campaign: tools/fuzz.sh 3600 fuzz_validation
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_merge_patch fuzz_validation fuzz_config fuzz_tokens fuzz_frame_guard)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMSYNC_FUZZ=ON -DMEMSYNC_TESTS=OFF >/dev/null
cmake --build build-fuzz -j2 --target "${targets[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  mkdir -p "$scratch/$name"
  echo "== $t: ${seconds}s from tests/fuzz/corpus/$name"
  # -rss_limit_mb: a hostile input must not need more memory than this.
  dict=()
  [ "$name" = merge_patch ] || [ "$name" = validation ] && dict=(-dict=tests/fuzz/json.dict)
  build-fuzz/tests/fuzz/"$t" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=4096 "${dict[@]}" \
    -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch/$name" \
    "tests/fuzz/corpus/$name" 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' || true
  if ls "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-* >/dev/null 2>&1; then
    echo "fuzz: $t found a failing input:"
    for f in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-*; do
      [ -f "$f" ] && { echo "  $f"; od -c "$f" | head -5; cp "$f" "build-fuzz/"; }
    done
    echo "fuzz: copied to build-fuzz/; add it to tests/fuzz/corpus/$name once fixed"
    exit 1
  fi
done
echo "fuzz: no failing input"
