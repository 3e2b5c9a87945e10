#!/usr/bin/env bash
# The main job: sets up, builds, and runs a client node with the example
# config. From a terminal you get its prompt; otherwise it plays a short
# code-review session (comments on lines of a file) and shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
node=(build/syncnode client --config config/client.ini --client.db-path="$data/alice.db")

if [ -t 0 ]; then
  exec "${node[@]}"
fi

echo "== first run: alice comments on review.cpp"
"${node[@]}" <<'CMDS'
watch comment
put c1 comment {"file":"review.cpp","line":12,"message":"Use a span here"}
put c2 comment {"file":"review.cpp","line":40,"message":"Typo in the name"}
put c3 comment {"file":"review.cpp","line":41,"message":"Same typo"}
patch c1 {"message":"Use std::span here","resolved":false}
del c3
sync
status
CMDS
echo "== second run: the same database, after a restart"
"${node[@]}" <<'CMDS'
ls comment
status
CMDS
