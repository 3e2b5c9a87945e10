#!/usr/bin/env bash
# Enforces the include rules of the layers (each folder's README states its
# own): the arrows point one way, so a client never compiles server or
# storage code and the protocol depends on nothing above it. Prints every
# violation and exits non-zero if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# forbid DIR PATTERN WHY: no file under DIR may include a header matching PATTERN.
forbid() {
  local dir=$1 pattern=$2 why=$3 hits
  hits=$(grep -rnE "#include \"($pattern)" "$dir" --include='*.hpp' --include='*.cpp' || true)
  if [ -n "$hits" ]; then
    echo "layering: $dir must not include $pattern ($why):"
    echo "$hits" | sed 's/^/  /'
    status=1
  fi
}

forbid messages       'actors/|node/|tools/|tests/' "the protocol includes nothing above it"
forbid actors/common  'actors/(hot|client|server|storage)/|node/|tools/|tests/' "shared support only"
forbid actors/hot     'actors/(client|server|storage)/|node/|tools/|tests/' "the hot layer needs no actors"
forbid actors/client  'actors/(server|storage)/|node/|tools/|tests/' "a client compiles no server or storage code"
forbid actors/storage 'actors/(hot|client|server)/|node/|tools/|tests/' "backends know only the protocol"
forbid actors/server  'actors/(hot|client)/|node/|tools/|tests/' "the server is not a client"
forbid node/config    'actors/(hot|client|server|storage)/|node/(client|server|loadtest)/' "options every node shares"
forbid node/client    'actors/(server|storage)/|node/(server|loadtest)/|tools/|tests/' "an application links the client alone"
forbid node/server    'actors/(hot|client)/|node/(client|loadtest)/|tools/|tests/' "the server node is not a client"
forbid node/loadtest  'tools/|tests/' "the load tester is part of syncnode"

[ $status -eq 0 ] && echo "layering: ok"
exit $status
