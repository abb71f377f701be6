#!/usr/bin/env bash
# The OpenIntent SDK's own client against `oidb serve`: makes a venv with the SDK from PyPI
# (openintent 0.17.0), builds oidb, and runs the pytest suite beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/python-venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "openintent==0.17.0" "openai>=1,<3" "pytest>=8,<9" "httpx>=0.27"
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin oidb
OIDB_BIN="$root/target/debug/oidb" "$venv/bin/pytest" -q "$here" "$@"
