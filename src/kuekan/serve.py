"""Run the API: one uvicorn process per worker, each on its own SO_REUSEPORT socket.

uvicorn's own ``--workers`` shares one listening socket, and the kernel then hands new
connections to whichever process wakes first: under an event flood one process ends up with most
of the 10,000 keep-alive connections and queues them while the other idles. With a socket per
process and SO_REUSEPORT the kernel spreads connections evenly by hash. The parent only
supervises: it forwards SIGTERM/SIGINT and exits when a child dies, so the orchestrator restarts
the pod (no silent half-capacity).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from typing import Any

import uvicorn

UVICORN_OPTIONS: dict[str, Any] = {
    "factory": True, "loop": "uvloop", "http": "httptools", "access_log": False,
    "timeout_keep_alive": 75, "log_level": "warning",
}


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _run_one(sock: socket.socket, backlog: int) -> None:
    # Hand uvicorn the socket object, not its fd: uvicorn rebuilds an fd as an AF_UNIX socket,
    # so accepted TCP connections lost TCP_NODELAY and every response whose headers and body
    # went out in two writes waited ~40 ms for the client's delayed ACK.
    config = uvicorn.Config("kuekan.app:create_app", backlog=backlog, **UVICORN_OPTIONS)
    uvicorn.Server(config).run(sockets=[sock])


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """In a forked worker: the kernel sends SIGTERM when the parent dies, however it dies
    (SIGKILL, the OOM killer), so no orphan keeps serving stale code on the shared port. The
    parent may already be gone before prctl ran: then stop now."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(1)
    if os.getppid() != parent:
        os._exit(0)


def serve(host: str, port: int, workers: int, backlog: int) -> int:
    """Serve until signalled; returns the exit status."""
    if workers <= 1:
        uvicorn.run("kuekan.app:create_app", host=host, port=port, backlog=backlog,
                    **UVICORN_OPTIONS)
        return 0
    children: list[int] = []
    stopping = False

    def forward(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    # Handlers first, then fork: a signal that arrives while workers start is forwarded to those
    # already running instead of killing the parent with its children left behind.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    parent = os.getpid()
    for _ in range(workers):
        sock = _listen(host, port, backlog)  # bound before forking: the port is taken now
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn installs its own
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _die_with_parent(parent)
                _run_one(sock, backlog)
            finally:
                os._exit(0)
        sock.close()
        children.append(pid)
        if stopping:
            forward(signal.SIGTERM, None)
            break
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        children.remove(pid)
        if not stopping:
            # A worker died on its own: stop the rest and exit non-zero so the supervisor
            # (Kubernetes, systemd) restarts the whole server instead of running at half capacity.
            status = os.waitstatus_to_exitcode(code) or 1
            forward(signal.SIGTERM, None)
    return status

