#!/usr/bin/env bash
# Run kazoo 2.11's own test suite (kazoo/tests from the installed wheel) against warren.
#
#   WARREN_BIN=path/to/warren tests/kazoo/run.sh [pytest args, e.g. -k test_lock]
#   KAZOO_TARGET=zookeeper    tests/kazoo/run.sh   # the same suite against Apache ZooKeeper 3.8
#
# Settings: see tests/kazoo/warren_kazoo.py. Exit status is pytest's: non-zero on any
# unexpected failure, on an expected failure that passed, or when no test ran.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${WARREN_VENV:-$HOME/.cache/warren/venv}
py=$venv/bin/python

if [ ! -x "$py" ]; then
    echo "kazoo: no Python venv at $venv; run tests/kazoo/setup-venv.sh (or bash .ci/run)" >&2
    exit 1
fi
if ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
    echo "kazoo: $venv is not at tests/kazoo/requirements.txt; run tests/kazoo/setup-venv.sh" >&2
    exit 1
fi
site=$("$py" -c 'import os, kazoo; print(os.path.dirname(os.path.dirname(kazoo.__file__)))')

# kazoo's CI mode: its version-gated tests take the version from ZOOKEEPER_VERSION instead
# of asking the server with `envi`, and its build-environment test runs instead of
# skipping. Set alike in every run so that a local run is the CI run.
# The version is the target's: warren speaks ZooKeeper 3.9 (it reports 3.9.3 in `envi`), the
# reference is Debian's 3.8.0.
if [ "${KAZOO_TARGET:-warren}" = zookeeper ]; then zk_version=3.8.0; else zk_version=3.9.3; fi
export CI=true ZOOKEEPER_VERSION=$zk_version
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1

echo "kazoo: target=${KAZOO_TARGET:-warren} bin=${WARREN_BIN:-} size=${KAZOO_CLUSTER_SIZE:-1}"
cd "$site"
# KAZOO_TESTS narrows the run to files, e.g. KAZOO_TESTS=kazoo/tests/test_lock.py
exec "$py" -m pytest -c "$here/pytest.ini" --rootdir "$site" "$@" ${KAZOO_TESTS:-kazoo/tests}
