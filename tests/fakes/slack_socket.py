"""Slack's Socket Mode server played on 127.0.0.1 (a WebSocket on port 0; the Web API fake's
`apps.connections.open` hands out its URL, and slack_sdk's built-in client connects to a port other than
443 without TLS, as its own tests do).

It says hello to each connection, sends the envelopes a test gives it (an Events API payload, as Slack
wraps one) and records the acks that come back.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[str] = []  # envelope ids acknowledged
        self.connected = threading.Event()
        self._out: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._server: Server | None = None
        self.url = ""

    def __enter__(self) -> FakeSocketMode:
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=fake"
        threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()

    def send_event(self, payload: dict[str, Any]) -> str:
        """Deliver an Events API payload to the connected client; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        self._out.put(json.dumps({"envelope_id": envelope_id, "payload": payload, "type": "events_api",
                                  "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""}))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while envelope_id not in self.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack of {envelope_id} in {timeout}s; acks: {self.acks}")
                self._changed.wait(left)

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP00001"},
                            "debug_info": {"host": "fake-socket-mode"}}))
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
            data = json.loads(message)
            if isinstance(data, dict) and data.get("envelope_id"):
                with self._changed:
                    self.acks.append(str(data["envelope_id"]))
                    self._changed.notify_all()
