#!/usr/bin/env bash
# The whole test suite: the Rust tests, then the OpenIntent SDK (from PyPI, in a venv this
# makes under target/) against `oidb serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-features
tests/python/run.sh
