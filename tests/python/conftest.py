"""Starts `oidb serve` on a free loopback port for each test, on a fresh file, and stops it."""

import os
import re
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest
from openintent import OpenIntentClient


@contextmanager
def process_saying(args, pattern):
    """Runs `oidb ARGS`, waits for its first stdout line, which must match `pattern`, yields the
    match; stops the process (SIGTERM, then SIGKILL after 30 s) at the end."""
    binary = os.environ["OIDB_BIN"]
    process = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        found = re.search(pattern, line)
        assert found, f"oidb {args[0]} said {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield found
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def served():
    """(base_url, path of the file) of a running `oidb serve`."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "served.oidb")
        args = ["serve", path, "--addr", "127.0.0.1:0", "--api-key", "test-key"]
        with process_saying(args, r"http://(127\.0\.0\.1:\d+)/api/v1") as found:
            yield f"http://{found.group(1)}", path


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
