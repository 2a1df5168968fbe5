"""Serving our real ASGI app on 127.0.0.1 for the platform tests, and plain HTTP to talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send


def http(method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of one request; an HTTP error status is an answer, not an exception."""
    req = urllib.request.Request(url, data=None if body is None else body.encode(), headers=headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@contextmanager
def running(web: ASGIApp) -> Iterator[str]:
    """uvicorn serving `web` on 127.0.0.1, a port of its own; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="off", interface="asgi3"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class CurrentApp:
    """The ASGI app of the test now running: one uvicorn serves a whole module (starting one costs ~0.2 s)."""

    def __init__(self) -> None:
        self.web: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.web is not None
        await self.web(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[CurrentApp, str]]:
    current = CurrentApp()
    with running(current) as url:
        yield current, url


@dataclass
class SocketProcess:
    """A real `weekly-bot socket --no-scheduler` (see `socket_process`)."""

    proc: subprocess.Popen[bytes]
    log: Path  # its standard error: the log

    def stop(self) -> float:
        """SIGTERM, as a deploy stops it; asserts it exits 0, and gives the seconds it took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.log.read_text(errors="replace")
        return time.monotonic() - started

    def clean_log(self) -> None:
        """Its log shows no traceback and no work left undone."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in text and "not done" not in text, text


@contextmanager
def socket_process(env: dict[str, str], workdir: Path) -> Iterator[SocketProcess]:
    """`weekly-bot socket --no-scheduler` in a process of its own with `env` (and no other variables but
    PATH, HOME and this virtualenv's), in `workdir`; killed on the way out if it still runs."""
    full = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), **env,
            **({"VIRTUAL_ENV": os.environ["VIRTUAL_ENV"]} if "VIRTUAL_ENV" in os.environ else {})}
    log = workdir / "socket.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "socket", "--no-scheduler"], env=full, cwd=workdir,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield SocketProcess(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
