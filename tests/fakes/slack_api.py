"""Slack's Web API played on 127.0.0.1 (like bolt-python's tests/mock_web_api_server, on port 0).

It answers the methods weekly-bot calls as Slack would, serves the upload URLs of files upload v2 and
any number of `response_url`s, records every call, and can be told to fail the next calls of a method
(a 429 with Retry-After, say).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.recording import Call, RecordingServer

BOT_USER_ID = "UBOT000001"
BOT_ID = "BBOT000001"
TEAM_ID = "T0TEAM0001"


@dataclass(frozen=True)
class Upload:
    """A file as files upload v2 delivered it: name, content, and where it was shared."""

    filename: str
    content: str
    channel: str | None
    initial_comment: str | None


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    times: int
    every: int = 1
    seen: int = 0


def landed_in(channel: str) -> str:
    """Where a message posted to `channel` lands: a user id (U…) means the bot's DM with that user (D…),
    named as the fake's conversations.open names it."""
    return "D" + channel[1:] if channel[:1] in ("U", "W") else channel


class FakeSlackApi(RecordingServer[Call]):
    """The fake Web API; use as a context manager, point `slack_api_url` at `api_url`."""

    def __init__(self, users: dict[str, str] | None = None, *, latency: float = 0.0) -> None:
        self.users = dict(users or {})  # email → user id, for users.lookupByEmail and users.info
        self.latency = latency  # seconds every Web API call takes (a far-away Slack)
        self.socket_url: str | None = None  # what apps.connections.open hands out (tests.fakes.slack_socket)
        self._failures: dict[str, _Failure] = {}
        self._hold: tuple[str, int, str] | None = None
        self._hold_seen = 0
        self.held = threading.Event()
        self._released = threading.Event()
        super().__init__(self._handler(), "fake-slack")

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base}/respond/{name}"

    # -- control and inspection ----------------------------------------------------------------
    def fail(self, method: str, *, status: int = 429, headers: dict[str, str] | None = None, times: int = 1,
             every: int = 1) -> None:
        """Answer `times` calls of `method` with `status` (and headers, e.g. Retry-After): the next ones, or
        with `every`, every `every`-th call from now on until `times` have failed."""
        self._failures[method] = _Failure(status, dict(headers or {}), times, every)

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The parameters of every successful chat.postMessage (that landed in `channel`)."""
        return [c.params for c in self.calls("chat.postMessage")
                if c.status == 200 and (channel is None or landed_in(str(c.params.get("channel"))) == channel)]

    def uploads(self) -> list[Upload]:
        """Files completed through files upload v2, with their content."""
        names = {c.params.get("_file_id"): c.params.get("filename") for c in self.calls("files.getUploadURLExternal")}
        contents = {c.params["file_id"]: c.body.decode("utf-8") for c in self.calls("upload")}
        out = []
        for c in self.calls("files.completeUploadExternal"):
            for f in json.loads(c.params.get("files") or "[]"):
                out.append(Upload(str(names.get(f["id"])), contents.get(f["id"], ""), c.params.get("channel_id"),
                                  c.params.get("initial_comment")))
        return out

    # -- holding a call, for a sender to be killed in the middle of it ---------------------------
    def hold(self, method: str, nth: int, when: str) -> None:
        """Hang the `nth` call of `method` (1-based) before taking it (`when="before"`) or after (`"after"`),
        until `release()`; `held` is set once it hangs."""
        with self._changed:
            self._hold = (method, nth, when)
            self._hold_seen = 0

    def _hold_here(self, method: str) -> str | None:
        with self._changed:
            if self._hold is None or self._hold[0] != method:
                return None
            self._hold_seen += 1
            if self._hold_seen != self._hold[1]:
                return None
            self.held.set()
            return self._hold[2]

    def release(self) -> None:
        self._released.set()

    def _due_to_fail(self, failure: _Failure) -> bool:
        with self._changed:
            if failure.times <= 0:
                return False
            failure.seen += 1
            if failure.seen % failure.every:
                return False
            failure.times -= 1
            return True

    # -- answering -----------------------------------------------------------------------------
    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url} if self.socket_url else {"ok": False, "error": "not_allowed"}
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "weekly-bot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{self.next_id('')}"
            return {"ok": True, "channel": landed_in(str(params.get("channel"))), "ts": ts,
                    "message": {"text": params.get("text"), "ts": ts, "bot_id": BOT_ID}}
        if method == "conversations.history":
            mine = [c.params for c in self.calls("chat.postMessage")
                    if c.status == 200 and landed_in(str(c.params.get("channel"))) == params.get("channel")]
            messages = [{"type": "message", "text": p.get("text"), "bot_id": BOT_ID,
                         **({"metadata": json.loads(p["metadata"]) if isinstance(p["metadata"], str) else p["metadata"]}
                            if p.get("metadata") and params.get("include_all_metadata") in (True, "true", "1") else {})}
                        for p in reversed(mine)]
            return {"ok": True, "messages": messages[: int(params.get("limit") or 100)], "has_more": False}
        if method == "conversations.open":
            user = str(params.get("users") or "").split(",")[0]
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "users.lookupByEmail":
            uid = self.users.get(str(params.get("email")))
            return {"ok": True, "user": {"id": uid}} if uid else {"ok": False, "error": "users_not_found"}
        if method == "users.info":
            email = next((e for e, u in self.users.items() if u == params.get("user")), None)
            return {"ok": True, "user": {"id": params.get("user"), "profile": {"email": email} if email else {}}}
        if method == "files.getUploadURLExternal":
            file_id = params["_file_id"]
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.base}/upload/{file_id}"}
        if method == "views.open":
            return {"ok": True, "view": {"id": self.next_id("V0VIEW")}}
        if method == "canvases.create":
            return {"ok": True, "canvas_id": self.next_id("F0CANVAS")}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")}
                                          for f in json.loads(params.get("files") or "[]")]}
        return {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the client died mid-request: Slack never takes half a request
                    return
                parts = url.path.strip("/").split("/")
                if parts[0] == "upload":
                    self._record(Call("upload", {"file_id": parts[1]}, url.path, 200, body))
                    self._send(200, b"OK", "text/plain")
                    return
                if parts[0] == "respond":
                    params = json.loads(body or b"{}")
                    self._record(Call("respond", {"_name": parts[1], **params}, url.path, 200, body))
                    self._send(200, b"ok", "text/plain")
                    return
                method = parts[-1]
                params = self._params(url.query, body)
                if method == "files.getUploadURLExternal":
                    params["_file_id"] = fake.next_id("F")
                if fake.latency:
                    time.sleep(fake.latency)
                failure = fake._failures.get(method)
                if failure and fake._due_to_fail(failure):
                    self._record(Call(method, params, url.path, failure.status, body))
                    self._send(failure.status, b'{"ok": false, "error": "ratelimited"}', headers=failure.headers)
                    return
                hold = fake._hold_here(method)
                if hold == "before":  # the sender dies before Slack takes the message: nothing recorded
                    fake._released.wait(60)
                    return
                token = "xapp-" if method == "apps.connections.open" else "xoxb-"  # the app-level token opens it
                if not str(self.headers.get("Authorization") or "").startswith(f"Bearer {token}"):
                    answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
                else:
                    answer = fake._answer(method, params)
                self._record(Call(method, params, url.path, 200, body))
                if hold == "after":  # Slack took the message; the sender dies before it hears so
                    fake._released.wait(60)
                    return
                self._send(200, json.dumps(answer).encode())

            def _params(self, query: str, body: bytes) -> dict[str, Any]:
                params: dict[str, Any] = dict(parse_qsl(query))
                text = body.decode("utf-8") if body else ""
                if text.startswith("{"):
                    params.update(json.loads(text))
                elif text:
                    params.update(parse_qsl(text, keep_blank_values=True))
                return params

            def _record(self, call: Call) -> None:
                fake.record(call)

            def _send(self, status: int, payload: bytes, content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
