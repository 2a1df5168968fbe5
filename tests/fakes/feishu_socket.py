"""Feishu's long connection played on 127.0.0.1: a WebSocket on port 0 speaking lark-oapi's frames
(pbbp2 protobuf, as lark_oapi.ws.Client reads them). The open API fake's `/callback/ws/endpoint` hands
out its URL to the app id and secret it knows, as Feishu's does.

It sends the event frames a test gives it (an event's JSON envelope, one frame each) and records the
answer frame the client writes back for each (its `code`: 200 when the handler took the event).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from typing import Any

from lark_oapi.ws.pb.pbbp2_pb2 import Frame
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

DATA, CONTROL = 1, 0  # lark_oapi.ws.enum.FrameType


class FakeLongConnection:
    def __init__(self) -> None:
        self.answers: dict[str, int] = {}  # message id → the code the client answered its frame with
        self.connected = threading.Event()
        self._out: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._server: Server | None = None
        self.url = ""

    def __enter__(self) -> FakeLongConnection:
        self._server = serve(self._handle, "127.0.0.1", 0)
        port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/v2?device_id=fake-device&service_id=1"
        threading.Thread(target=self._server.serve_forever, name="fake-feishu-ws", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()

    def send_event(self, envelope: dict[str, Any]) -> str:
        """Deliver an event (its schema 2.0 envelope) to the connected client; returns the frame's message id."""
        message_id = uuid.uuid4().hex
        frame = Frame(SeqID=1, LogID=1, service=1, method=DATA,
                      payload=json.dumps(envelope, ensure_ascii=False).encode())
        for key, value in {"type": "event", "message_id": message_id, "sum": "1", "seq": "0",
                           "trace_id": uuid.uuid4().hex}.items():
            frame.headers.add(key=key, value=value)
        self._out.put(frame.SerializeToString())
        return message_id

    def wait_answer(self, message_id: str, timeout: float = 10.0) -> int:
        """The code the client answered the frame `message_id` with, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while message_id not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no answer to {message_id} in {timeout}s; answers: {self.answers}")
                self._changed.wait(left)
            return self.answers[message_id]

    def _handle(self, ws: ServerConnection) -> None:
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
            if not isinstance(message, bytes):
                continue
            frame = Frame.FromString(message)
            if frame.method != DATA:  # the client's pings: nothing to record
                continue
            headers = {h.key: h.value for h in frame.headers}
            with self._changed:
                self.answers[headers.get("message_id", "")] = int(json.loads(frame.payload).get("code") or 0)
                self._changed.notify_all()
