"""The part every fake platform API shares: a stdlib HTTP server on 127.0.0.1 port 0 in a thread,
recording each call so tests can assert on (and wait for) what weekly-bot sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, Self, TypeVar


@dataclass(frozen=True)
class Call:
    """One request a fake received: `method` names the platform's API method (or `upload`, `respond`)."""

    method: str
    params: dict[str, Any]
    path: str
    status: int
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)


class _Named(Protocol):
    @property
    def method(self) -> str: ...


C = TypeVar("C", bound=_Named)


class _QuietServer(ThreadingHTTPServer):
    """A client that hung up (a sender killed mid-call) is no error worth a traceback on the test's stderr.
    Like a real API, it takes a burst of connections at once (socketserver's default backlog is 5)."""

    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        return


class RecordingServer(Generic[C]):
    """Serves `handler` on a free loopback port while used as a context manager; `calls` holds what came."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._calls: list[C] = []
        self._changed = threading.Condition()
        self._counter = 0
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, call: C) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def next_id(self, prefix: str) -> str:
        with self._changed:
            self._counter += 1
            return f"{prefix}{self._counter:06d}"

    def clear(self) -> None:
        """Forget the calls so far (a test's set-up is done)."""
        with self._changed:
            self._calls.clear()

    def calls(self, method: str | None = None) -> list[C]:
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, method: str, *, count: int = 1, timeout: float = 10.0,
                 where: Callable[[C], bool] | None = None) -> list[C]:
        """The first `count` matching calls, waiting up to `timeout` seconds for them; AssertionError if not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self._calls]
                    raise AssertionError(f"waited {timeout}s for {count} {method} call(s); got {len(found)}: {seen}")
                self._changed.wait(left)
