#!/usr/bin/env bash
# The OpenIntent SDK's own client against `oidb serve`, and the viewer in a real browser: makes a
# venv with the SDK (openintent 0.17.0) and Selenium from PyPI, builds oidb, and runs the pytest
# suite beside this script. The browser is Debian's Chromium and its driver
# (`apt-get install chromium chromium-driver`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/python-venv"
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "import selenium" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "openintent==0.17.0" "openai>=1,<3" "pytest>=8,<9" "httpx>=0.27" "selenium>=4.20,<5"
fi
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
  else
    echo "the viewer's tests need Chromium and its driver: apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin oidb
OIDB_BIN="$root/target/debug/oidb" "$venv/bin/pytest" -q "$here" "$@"
