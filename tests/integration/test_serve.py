"""`kuekan serve --workers 2`: one process per worker on SO_REUSEPORT sockets, supervised."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO, _free_port, kill_group


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(x) for x in out.stdout.split()]


@pytest.fixture
def two_workers(database: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuekan", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO, env={**os.environ, "KUEKAN_RATE_LIMITS": "off"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200 and len(
                    _children(proc.pid)) == 2:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    yield proc, base
    kill_group(proc)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))  # no SO_REUSEPORT: fails while any worker listens
        except OSError:
            return False
        return True


def test_sigkilled_parent_takes_its_workers_with_it(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, base = two_workers
    port = int(base.rsplit(":", 1)[1])
    children = _children(proc.pid)
    assert len(children) == 2
    assert not _port_free(port)
    os.kill(proc.pid, signal.SIGKILL)  # the OOM killer, `kill -9`: no chance to forward
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
            _port_free(port) and not any(_alive(c) for c in children)):
        time.sleep(0.1)
    assert not any(_alive(c) for c in children), "orphan workers left"
    assert _port_free(port), "the port is still taken after the parent died"


def test_both_workers_serve_and_sigterm_stops_everything(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, base = two_workers
    children = _children(proc.pid)
    assert len(children) == 2
    for _ in range(20):  # fresh connections, spread by the kernel over both sockets
        with httpx.Client() as c:
            assert c.get(f"{base}/healthz").status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert all(not os.path.exists(f"/proc/{c}") for c in children)


def test_a_dead_worker_stops_the_server_with_an_error(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, _ = two_workers
    first, second = _children(proc.pid)
    os.kill(first, signal.SIGKILL)
    assert proc.wait(timeout=20) != 0  # the supervisor restarts the whole server
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{second}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{second}")


def test_request_ids_are_unique_across_workers_and_a_given_one_is_echoed(
        two_workers: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = two_workers
    ids = []
    for _ in range(40):  # fresh connections: the kernel spreads them over both processes
        with httpx.Client() as c:
            ids.append(c.get(f"{base}/readyz").headers["x-request-id"])
    assert len(set(ids)) == len(ids)
    # Each process draws its own prefix after the fork: both processes answered, with prefixes
    # of their own (a prefix shared by the two would repeat ids).
    assert len({i[:16] for i in ids}) == 2, ids
    echoed = httpx.get(f"{base}/readyz", headers={"X-Request-Id": "trace-me-42"})
    assert echoed.headers["x-request-id"] == "trace-me-42"
