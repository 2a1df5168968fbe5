"""Feishu's long connection played on 127.0.0.1: a WebSocket on port 0 speaking lark-oapi's frames
(pbbp2 protobuf, as lark_oapi.ws.Client reads them). The open API fake's `/callback/ws/endpoint` hands
out its URL to the app id and secret it knows, as Feishu's does.

It sends the event frames a test gives it (an event's JSON envelope, one frame each) and records the
answer frame the client writes back for each (its `code`: 200 when the handler took the event).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakes.websocket import QueuedWebSocket

DATA = 1  # lark_oapi.ws.enum.FrameType (CONTROL, 0, is the client's pings)


class FakeLongConnection(QueuedWebSocket):
    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, int] = {}  # message id → the code the client answered its frame with

    def address(self, port: int) -> str:
        return f"ws://127.0.0.1:{port}/ws/v2?device_id=fake-device&service_id=1"

    def received(self, message: str | bytes) -> None:
        if not isinstance(message, bytes):
            return
        frame = Frame.FromString(message)
        if frame.method == DATA:
            headers = {h.key: h.value for h in frame.headers}
            self.answers[headers.get("message_id", "")] = int(json.loads(frame.payload).get("code") or 0)

    def send_event(self, envelope: dict[str, Any]) -> str:
        """Deliver an event (its schema 2.0 envelope) to the connected client; returns the frame's message id."""
        message_id = uuid.uuid4().hex
        frame = Frame(SeqID=1, LogID=1, service=1, method=DATA,
                      payload=json.dumps(envelope, ensure_ascii=False).encode())
        for key, value in {"type": "event", "message_id": message_id, "sum": "1", "seq": "0",
                           "trace_id": uuid.uuid4().hex}.items():
            frame.headers.add(key=key, value=value)
        self.push(frame.SerializeToString())
        return message_id

    def wait_answer(self, message_id: str, timeout: float = 10.0) -> int:
        """The code the client answered the frame `message_id` with, waiting for it."""
        return self.wait_until(lambda: self.answers.get(message_id), f"the answer to {message_id}", timeout)
