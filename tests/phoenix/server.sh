#!/usr/bin/env bash
# Arize Phoenix (PyPI's arize-phoenix 20.26.1), an OpenTelemetry back end whose server takes
# OTLP/HTTP at /v1/traces, installed into a venv under target/ the first time; prints the
# `phoenix` command's path, for OIDB_PHOENIX.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/phoenix-venv"
if [ ! -x "$venv/bin/phoenix" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "arize-phoenix==20.26.1" >&2
fi
echo "$venv/bin/phoenix"
