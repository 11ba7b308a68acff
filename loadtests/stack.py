"""Shared helpers of the benchmark and the load runner: a dedicated database, the API and worker
processes (started by us, stopped by PID), a raw keep-alive HTTP/1.1 client, and percentiles.

Only loopback; never touches a database, Redis db or process it did not create/start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
PG_BASE = os.environ.get("KUEKAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("KUEKAN_BENCH_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(want: int = 65536) -> int:
    """Raise the soft open-files limit as far as the hard limit allows; return the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def recreate_database(name: str) -> str:
    """Drop and create ``name`` (only databases this tool owns: the name must start kuekan_)."""
    assert name.startswith(("kuekan_bench", "kuekan_load")), name
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", name)
        await admin.execute(f'drop database if exists "{name}"')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    dsn = f"{PG_BASE}/{name}"
    from kuekan.db.migrate import migrate

    await migrate(dsn)
    return dsn


async def flush_redis_db(url: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(url)
    try:
        await r.flushdb()
    finally:
        await r.aclose()


def stack_env(dsn: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "KUEKAN_DATABASE_URL": dsn, "KUEKAN_REDIS_URL": redis_url,
           "KUEKAN_RATE_LIMITS": "off", "KUEKAN_LOG_LEVEL": "warning",
           "KUEKAN_LOG_JSON": "true", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


@dataclass
class Procs:
    """Processes we started; each is stopped by its own PID (and its own process group)."""

    items: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str],
              log: Path | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
                                if log else subprocess.DEVNULL, start_new_session=True)
        self.items.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        if proc.poll() is None:
            # The process leads its own session (start_new_session), so its group id is its
            # PID: this reaches uvicorn's worker children too, and nothing else.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Children left behind by a killed parent are in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for _, proc in reversed(self.items):
            self.stop(proc)
        self.items.clear()


def start_api(procs: Procs, env: dict[str, str], *, port: int, workers: int,
              backlog: int = 8192, log: Path | None = None, ready_timeout: float = 60,
              app: str | None = None, app_dir: str | None = None,
              ) -> tuple[subprocess.Popen[bytes], str]:
    """``kuekan serve``; or, for A/B measurements of a proposed change, uvicorn with the same
    flags on another app factory (``app`` = "module:factory", importable from ``app_dir``)."""
    if app is None:
        argv = [PY, "-m", "kuekan", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--backlog", str(backlog)]
    else:
        argv = [PY, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port",
                str(port), "--workers", str(workers), "--backlog", str(backlog), "--loop",
                "uvloop", "--http", "httptools", "--no-access-log", "--timeout-keep-alive",
                "75", "--log-level", "warning", *(["--app-dir", app_dir] if app_dir else [])]
    proc = procs.start("api", argv, env, log)
    base = f"http://127.0.0.1:{port}"
    wait_ready(proc, base, ready_timeout)
    return proc, base


def wait_ready(proc: subprocess.Popen[bytes], base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"API at {base} not ready within {timeout} s")


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


# A raw HTTP/1.1 keep-alive client: a few microseconds of Python per request, so one client
# process can drive the API without being the bottleneck (httpx costs ~10x more per request).
class RawConn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
            payload = bytes(data)
        else:
            payload = await self.reader.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return status, hdrs, payload


def machine_cpu(since: tuple[float, float] | None = None) -> tuple[float, float]:
    """(busy, total) core-seconds from /proc/stat, absolute or since an earlier reading."""
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = (vals[3] + vals[4]) / tick
    total = sum(vals[:8]) / tick
    busy = total - idle
    if since is None:
        return busy, total
    return busy - since[0], total - since[1]



# CPU accounting from /proc: CPU-seconds per operation hold up on a shared box far better than
# throughput does (other processes steal wall time, not our CPU time).
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by ``root`` and all its live descendants."""
    stats: dict[int, tuple[int, float]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            s = _stat(int(d.name))
            if s is not None:
                stats[int(d.name)] = s
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(p for p, (pp, _) in stats.items() if pp == pid)
    return total


async def backend_pids(dbname: str) -> list[int]:
    conn = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        rows = await conn.fetch("select pid from pg_stat_activity where datname = $1", dbname)
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def pids_cpu(pids: list[int]) -> float:
    return sum(s[1] for s in (_stat(p) for p in pids) if s is not None)


# (method, path, headers, body) for request number i.
Request = tuple[str, str, dict[str, str], bytes]


@dataclass
class Flood:
    """What a flood of requests got back: latencies sorted, statuses, acknowledged indices."""

    elapsed: float
    lat: list[float]
    statuses: dict[int, int]
    acked: list[int]
    errors: int = 0
    retries: int = 0

    @property
    def rps(self) -> float:
        return len(self.acked) / self.elapsed

    def p(self, q: float) -> float:
        return pct(self.lat, q)


async def flood(base: str, n: int, conc: int, make: Callable[[int], Request], *,
                ok: int = 201, retry: bool = True) -> Flood:
    """Send requests 0..n-1 from ``conc`` keep-alive connections (raw HTTP/1.1, so the client is
    never the bottleneck). With ``retry``, a transport error, 409 (in flight) or 503 is retried
    up to 4 times with the same request — the same Idempotency-Key — as real clients do."""
    host, port = base.removeprefix("http://").split(":")
    out = Flood(0.0, [], {}, [])
    next_i = 0

    async def client() -> None:
        nonlocal next_i
        conn = RawConn(host, int(port))
        try:
            while next_i < n:
                i = next_i
                next_i += 1
                method, path, headers, body = make(i)
                for attempt in range(5 if retry else 1):
                    t0 = time.perf_counter()
                    try:
                        status, _, _ = await conn.request(method, path, headers, body)
                    except (OSError, asyncio.IncompleteReadError, ValueError):
                        out.errors += 1
                        out.retries += 1
                        await conn.close()
                        await asyncio.sleep(0.05 * (attempt + 1))
                        continue
                    out.lat.append(time.perf_counter() - t0)
                    out.statuses[status] = out.statuses.get(status, 0) + 1
                    if status == ok:
                        out.acked.append(i)
                        break
                    if retry and status in (409, 503) and attempt < 4:
                        out.retries += 1
                        await asyncio.sleep(0.05 * (attempt + 1))
                        continue
                    break
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(conc)))
    out.elapsed = time.perf_counter() - t0
    out.lat.sort()
    return out


def _own_files() -> frozenset[str]:
    """src/kuekan's modules, as py-spy names files: relative to their sys.path entry."""
    root = REPO / "src" / "kuekan"
    return frozenset(str(p.relative_to(root)) for p in root.rglob("*.py")) - {"__main__.py"}


def _top(counts: dict[str, int], total: int, top: int) -> list[str]:
    return [f"    {100 * n / total:5.1f} %  {f}"
            for f, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]]


def profile_summary(path: Path, top: int = 12) -> str:
    """Where a py-spy ``--format raw`` profile spent its samples: the functions that were on
    the CPU themselves (self) and, of the project's own code, those with their callees
    (inclusive). Idle samples (py-spy without ``--idle`` records none) are not in the file."""
    if not path.exists():
        return "  (py-spy wrote no profile: see its log)"
    own = _own_files()
    self_n: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        # A frame is "function (file:line)"; count each of our functions once per stack.
        located = (f.rpartition(" (") for f in frames)
        mine = {f"{name} ({file})" for name, _, where in located
                if (file := where.rsplit(":", 1)[0]) in own}
        for f in mine:
            incl[f] = incl.get(f, 0) + n
    if not total:
        return "  (no samples)"
    return "\n".join([f"  {total} samples; self time, top {top}:", *_top(self_n, total, top),
                      f"  the project's functions with their callees, top {top}:",
                      *_top(incl, total, top)])


ACCEPT_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")


def accept_counters() -> dict[str, int]:
    """The kernel's counters of connections a listener could not take at once (accept queue
    full: overflows, drops) and of SYNs clients had to send again (``/proc/net/netstat``,
    this network namespace). Read before and after a run: non-zero deltas mean some users
    waited 1 s, 3 s, 7 s... to be let in."""
    lines = [ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()
             if ln.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    values = dict(zip(lines[0][1:], lines[1][1:], strict=False))
    return {k: int(values[k]) for k in ACCEPT_COUNTERS if k in values}
