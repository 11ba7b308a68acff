"""`make clean-embedded` (ops/dev/services.py stop): stops an embedded PostgreSQL even when run
as root with the server owned by another user (pg_ctl refuses exactly that)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def embedded_state() -> Iterator[Path]:
    if not PG_BIN:
        pytest.fail("PostgreSQL server binaries (initdb, postgres) are needed for this test")
    bindir = PG_BIN[-1]
    # Not under pytest's tmp_path: its root-only parents would keep the postgres user out.
    state = Path(tempfile.mkdtemp(prefix="kuekan-embedded-"))
    (state / "pgdata").mkdir()
    if os.geteuid() == 0:
        shutil.chown(state, "postgres")
        shutil.chown(state / "pgdata", "postgres")
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(state / "pgdata"), "-A", "trust"]),
                   check=True, capture_output=True, timeout=120)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(state / "pgdata"), "-w", "-o",
                              f"-p {port} -k {state / 'pgdata'} -c listen_addresses=''",
                              "-l", str(state / "pg.log"), "start"]),
                   check=True, capture_output=True, timeout=120)
    yield state
    pidfile = state / "pgdata" / "postmaster.pid"
    if pidfile.exists():  # the test failed to stop it: do not leave a server behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    shutil.rmtree(state, ignore_errors=True)


def test_clean_embedded_stops_postgres_owned_by_another_user(embedded_state: Path) -> None:
    pid = int((embedded_state / "pgdata" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, 0)  # running
    out = subprocess.run([sys.executable, str(REPO / "ops/dev/services.py"), "stop"],
                         env={**os.environ, "KUEKAN_STATE_DIR": str(embedded_state)},
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "embedded PostgreSQL: stopped" in out.stdout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
