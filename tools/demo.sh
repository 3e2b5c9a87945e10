#!/usr/bin/env bash
# The main job: sets up, builds, then starts a server node (embedded SQLite)
# and two client nodes, alice and bob, as separate processes over loopback,
# plays a code review between them, shows what each sees and how fast each
# change reached the other, and checks that both converged to the server's
# state (non-zero exit if not). Every process it starts is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh syncnode syncdemo >/dev/null
exec build/tools/syncdemo build/syncnode config "${1:-200}"
