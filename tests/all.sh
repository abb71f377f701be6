#!/usr/bin/env bash
# The whole test suite: the Rust tests (the replication tests against a real nats-server, and
# OTLP shipping against a real Arize Phoenix, each from PyPI into a venv under target/), then
# the OpenIntent SDK (from PyPI, in a venv this makes under target/) against `oidb serve`, and
# the viewer in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
OIDB_NATS_SERVER="$(tests/nats/server.sh)"
export OIDB_NATS_SERVER
OIDB_PHOENIX="$(tests/phoenix/server.sh)"
export OIDB_PHOENIX
cargo test --all-features
tests/python/run.sh
