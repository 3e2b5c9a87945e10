#!/usr/bin/env bash
# Installs the Debian packages a fresh machine lacks, then configures and
# builds into build/ (everything, or only the targets given as arguments).
# Running it again only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ libcaf-dev nlohmann-json3-dev libsqlite3-dev sqlite3
          libpq-dev postgresql libgtest-dev libbenchmark-dev libssl-dev libjemalloc-dev
          clang libclang-rt-14-dev)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${MEMSYNC_CMAKE_ARGS:-} >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j2 "${targets[@]}"
