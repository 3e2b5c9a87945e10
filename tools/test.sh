#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite: every test
# registered with ctest, then the concurrency test of the hot layer under
# ThreadSanitizer (built separately: it does not link CAF, whose
# uninstrumented libraries would only produce noise).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

ctest --test-dir build --output-on-failure -j2 --timeout 300

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMSYNC_TSAN=ON >/dev/null
cmake --build build-tsan -j2 --target store_core_tsan_test
TSAN_OPTIONS="halt_on_error=1" build-tsan/tests/store_core_tsan_test
