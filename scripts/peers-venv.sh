#!/usr/bin/env bash
# Creates (or reuses) the virtualenv with the third-party peers the tests run against, and prints its path.
# Usage: scripts/peers-venv.sh   → prints e.g. /repo/target/peers-venv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${IOSNAP_PEERS_VENV:-$root/target/peers-venv}"
req="$root/tests/peers/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
