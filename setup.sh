#!/usr/bin/env bash
# Set up CDBench on a fresh Debian machine: Chromium (the report test renders the leaderboard
# in it), a virtual environment in .venv, the package with its pinned dependencies, and the
# locally trained models.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  else
    echo "note: install Debian's chromium (apt-get install chromium) to run the report test" >&2
  fi
fi
python3 -m venv .venv
. .venv/bin/activate
pip install -q -c constraints.txt -e ".[test]"
# The models trained here with known circuits (SIIT from Tracr programs, induction): a few minutes
# on 2 cores, cached in ~/.cache/cdbench (or $CDBENCH_CACHE); a rerun finds them built.
python -m bench models build
echo "set up; now run: . .venv/bin/activate"
