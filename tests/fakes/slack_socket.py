"""Slack's Socket Mode server played on 127.0.0.1 (a WebSocket on port 0; the Web API fake's
`apps.connections.open` hands out its URL, and slack_sdk's built-in client connects to a port other than
443 without TLS, as its own tests do).

It says hello to each connection, sends the envelopes a test gives it (an Events API payload, as Slack
wraps one) and records the acks that come back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from websockets.sync.server import ServerConnection

from tests.fakes.websocket import QueuedWebSocket


class FakeSocketMode(QueuedWebSocket):
    def __init__(self) -> None:
        super().__init__()
        self.acks: list[str] = []  # envelope ids acknowledged

    def address(self, port: int) -> str:
        return f"ws://127.0.0.1:{port}/link/?ticket=fake"

    def greet(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP00001"},
                            "debug_info": {"host": "fake-socket-mode"}}))

    def received(self, message: str | bytes) -> None:
        data = json.loads(message)
        if isinstance(data, dict) and data.get("envelope_id"):
            self.acks.append(str(data["envelope_id"]))

    def send_event(self, payload: dict[str, Any]) -> str:
        """Deliver an Events API payload to the connected client; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        self.push(json.dumps({"envelope_id": envelope_id, "payload": payload, "type": "events_api",
                              "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""}))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> None:
        self.wait_until(lambda: True if envelope_id in self.acks else None, f"the ack of {envelope_id}", timeout)
