#!/usr/bin/env bash
# Create (or bring up to date) the Python venv of the kazoo adapter from requirements.txt.
# Usage: tests/kazoo/setup-venv.sh   (venv at $WARREN_VENV, default ~/.cache/warren/venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${WARREN_VENV:-$HOME/.cache/warren/venv}
stamp=$venv/.requirements.txt

if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements.txt" "$stamp"; then
    echo "kazoo venv: up to date at $venv"
    exit 0
fi
echo "kazoo venv: installing $here/requirements.txt into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
