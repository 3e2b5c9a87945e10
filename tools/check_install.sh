#!/usr/bin/env bash
# Checks that the installed package works for an application: installs the
# build (default build/) into a temporary prefix, configures and builds
# tools/example/ against that prefix alone (find_package(memsync)), fails if
# the program links libpq, and runs it on config/example-app.ini with its
# database in the temporary directory. Removes everything it made.
#   tools/check_install.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memsync-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# The package registry and the system paths could offer another memsync:
# only the fresh prefix may be searched.
cmake -S tools/example -B "$tmp/example" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  "${launcher[@]}" >/dev/null
found=$(grep '^memsync_DIR:' "$tmp/example/CMakeCache.txt" | cut -d= -f2)
case "$found" in
  "$tmp/prefix"/*) ;;
  *) echo "install check: memsync found in '$found', not in the fresh prefix"; exit 1 ;;
esac
# Paths under the temporary directory change every run: relative to it,
# ccache recognises the same compilation again.
CCACHE_BASEDIR="$tmp" cmake --build "$tmp/example" -j2 >/dev/null

app="$tmp/example/memsync_example"
if readelf -d "$app" | grep -q 'NEEDED.*libpq'; then
  echo "install check: the example links libpq; a client must not need it:"
  readelf -d "$app" | grep NEEDED
  exit 1
fi
"$app" config/example-app.ini --client.db-path="$tmp/example-app.db"
echo "install check: ok"
