"""The part the platforms' WebSocket fakes share (Slack's Socket Mode, Feishu's long connection): a
server on 127.0.0.1 port 0 in a thread that sends each connected client what a test queued and hands
every message the client sends to the fake, which records it."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Self, TypeVar

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

T = TypeVar("T")


class QueuedWebSocket:
    def __init__(self) -> None:
        self.connected = threading.Event()
        self.changed = threading.Condition()  # notified after each message received
        self._out: queue.SimpleQueue[str | bytes] = queue.SimpleQueue()
        self._server: Server | None = None
        self.url = ""

    # -- what each fake says ------------------------------------------------------------------
    def address(self, port: int) -> str:
        """The URL a client connects to, given the port."""
        raise NotImplementedError

    def greet(self, ws: ServerConnection) -> None:
        """What a client is sent as it connects (nothing, unless the platform says hello)."""

    def received(self, message: str | bytes) -> None:
        """A message from the client (called holding `changed`)."""
        raise NotImplementedError

    # -- for tests ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = self.address(self._server.socket.getsockname()[1])
        threading.Thread(target=self._server.serve_forever, name=f"fake-{type(self).__name__}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()

    def push(self, message: str | bytes) -> None:
        """Send `message` to the connected client (now, or as soon as one connects)."""
        self._out.put(message)

    def wait_until(self, found: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
        """What `found` gives once it gives something, checked after each message received."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (value := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} not seen in {timeout}s")
                self.changed.wait(left)
            return value

    def _handle(self, ws: ServerConnection) -> None:
        self.greet(ws)
        self.connected.set()
        while True:
            try:
                while True:
                    ws.send(self._out.get_nowait())
            except queue.Empty:
                pass
            except ConnectionClosed:
                return
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            with self.changed:
                self.received(message)
                self.changed.notify_all()
