"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (port 0) for tests.

It records every request body and answers each one as the test's script says: a JSON answer,
an error status (with headers such as Retry-After), a reply that comes too late, or garbage.
A request with `"stream": true` gets a 200 chat completion as server-sent events, as real servers
send it: the content in small chunks, then the finish reason, then the usage when the request asked
for it (`stream_options.include_usage`) and the script reported some.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response; `delay` seconds pass before it is sent."""

    status: int = 200
    body: Any = None  # dict/list → JSON, str → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the body's bytes: each read is quick, the whole answer is not


Script = Callable[[dict[str, Any], int], Reply]


def answer(content: str | dict[str, Any], *, tokens_in: int = 120, tokens_out: int = 40) -> Reply:
    """A 200 chat completion whose message content is `content` (a dict is sent as its JSON)."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return Reply(body={
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1728000000,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
    })


def error(status: int, message: str, *, headers: dict[str, str] | None = None, param: str | None = None) -> Reply:
    """An OpenAI-style error response."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return Reply(status=status, body=body, headers=headers or {})


def late(seconds: float) -> Reply:
    """A reply that only comes after `seconds` (longer than the client will wait)."""
    return Reply(delay=seconds, body={"error": {"message": "too late"}}, status=500)


def sequence(replies: Sequence[Reply]) -> Script:
    """Answer the n-th request with the n-th reply (the last one repeats)."""
    return lambda _body, n: replies[min(n, len(replies) - 1)]


class FakeOpenAI:
    """The server; use as a context manager. `requests` holds every JSON body received, in order."""

    def __init__(self, script: Script | Reply) -> None:
        self.script: Script = script if callable(script) else sequence([script])
        self.requests: list[dict[str, Any]] = []
        self.aborted = 0  # answers the client hung up on before they were sent whole
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()  # wakes handlers still sleeping on a late reply
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            n = len(self.requests)
            self.requests.append(body)
        return self.script(body, n)

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(Reply(status=404, body={"error": {"message": f"no route {self.path}"}}))
                return
            body = json.loads(raw or b"{}")
            reply = fake.record(body)
            if reply.delay:
                fake.wait(reply.delay)
            self._send(reply, stream=bool(body.get("stream")),
                       usage=bool((body.get("stream_options") or {}).get("include_usage")))

        def _send(self, reply: Reply, *, stream: bool = False, usage: bool = False) -> None:
            events = _as_events(reply.body, usage) if stream and reply.status == 200 else None
            if events is not None:
                payload, ctype = events.encode("utf-8"), "text/event-stream; charset=utf-8"
            elif isinstance(reply.body, str):
                payload, ctype = reply.body.encode("utf-8"), "text/plain; charset=utf-8"
            else:
                payload, ctype = json.dumps(reply.body, ensure_ascii=False).encode("utf-8"), "application/json"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not reply.trickle:
                    self.wfile.write(payload)
                    return
                for i in range(len(payload)):
                    if fake._stopping.is_set():
                        return
                    self.wfile.write(payload[i:i + 1])
                    self.wfile.flush()
                    fake.wait(reply.trickle)
            except (BrokenPipeError, ConnectionResetError):
                with fake._lock:
                    fake.aborted += 1  # the client gave up waiting, as a timeout test intends

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


CHUNK_CHARS = 7  # characters of content per streamed chunk


def _as_events(body: Any, usage: bool) -> str | None:
    """A chat completion body as the `data:` events of a stream; None for a body that is not one."""
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (TypeError, KeyError, IndexError):
        return None
    base = {"id": body.get("id", "chatcmpl-fake"), "object": "chat.completion.chunk",
            "created": body.get("created", 0), "model": body.get("model", "fake-model")}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for i in range(0, len(content), CHUNK_CHARS):
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": content[i:i + CHUNK_CHARS]},
                                            "finish_reason": None}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason", "stop")}]})
    if usage and body.get("usage"):
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks) + "data: [DONE]\n\n"
