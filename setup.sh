#!/usr/bin/env bash
# Set up CDBench on a fresh Debian machine: Chromium (the report test renders the leaderboard
# in it), a virtual environment in .venv, and the package with its pinned dependencies. The
# models trained here ship with the package; set-up only checks their weights (sha256), and
# writes nothing into the checkout.
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
pip install -q -c constraints.txt -e ".[test,ray]"
python -m bench models build
echo "set up; now run: . .venv/bin/activate"
