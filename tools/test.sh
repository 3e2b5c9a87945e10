#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite: every test
# registered with ctest, then the concurrency test of the hot layer under
# ThreadSanitizer (a build of its own that compiles only the hot layer and
# what it links; no actor runs in it, so CAF's uninstrumented libraries
# cannot produce noise), then each fuzz target for a bounded time on its
# corpus (tools/fuzz.sh), and last an application built against the
# installed package (tools/check_install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/check_layers.sh

ctest --test-dir build --output-on-failure -j2 --timeout 300

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMSYNC_TSAN=ON >/dev/null
cmake --build build-tsan -j2 --target store_core_tsan_test
TSAN_OPTIONS="halt_on_error=1" build-tsan/tests/store_core_tsan_test

tools/fuzz.sh "${MEMSYNC_FUZZ_SECONDS:-15}"

tools/check_install.sh build
