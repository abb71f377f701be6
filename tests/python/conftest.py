"""Starts `oidb serve` on a free loopback port for each test, on a fresh file, and stops it."""

import os
import re
import subprocess
import tempfile
import time

import pytest
from openintent import OpenIntentClient


@pytest.fixture
def served():
    """(base_url, path of the file) of a running `oidb serve`."""
    binary = os.environ["OIDB_BIN"]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "served.oidb")
        process = subprocess.Popen(
            [binary, "serve", path, "--addr", "127.0.0.1:0", "--api-key", "test-key"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = process.stdout.readline()
        found = re.search(r"http://(127\.0\.0\.1:\d+)/api/v1", line)
        assert found, f"oidb serve did not say where it listens: {line!r} {process.stderr.read()}"
        try:
            yield f"http://{found.group(1)}", path
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def client(served):
    base_url, _ = served
    client = OpenIntentClient(base_url=base_url, api_key="test-key", agent_id="sdk-agent")
    deadline = time.time() + 30
    while True:
        try:
            client.list_intents()
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    return client
