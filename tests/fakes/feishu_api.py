"""Feishu's open API played on 127.0.0.1 port 0, for the real lark-oapi client pointed at it by FEISHU_DOMAIN.

It answers the calls weekly-bot makes as Feishu would (tenant_access_token, bot/v3/info, im/v1/messages,
im/v1/files, contact/v3/users…), records every call, and can be told to fail the next calls of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.recording import Call, RecordingServer

APP_ID = "cli_a1b2c3d4e5f60001"
APP_SECRET = "fake-app-secret-0123456789abcdef"
BOT_OPEN_ID = "ou_bot0000000000000000000000000001"
TENANT_TOKEN = "t-g1044fake0000tenant0token"


@dataclass(frozen=True)
class Message:
    """A message the bot sent: where, its type, and its content (parsed)."""

    receive_id_type: str
    receive_id: str
    msg_type: str
    content: dict[str, Any]

    @property
    def text(self) -> str:
        """A text message's text, or a card's text blocks joined by newlines."""
        if self.msg_type == "text":
            return str(self.content.get("text"))
        if self.msg_type == "interactive":
            return "\n".join(e["text"]["content"] for e in self.content.get("elements", []) if e.get("tag") == "div")
        return ""

    @property
    def buttons(self) -> list[tuple[str, dict[str, Any]]]:
        """A card's buttons as (label, value)."""
        return [(b["text"]["content"], b["value"]) for e in self.content.get("elements", [])
                if e.get("tag") == "action" for b in e["actions"]]


@dataclass
class _Failure:
    status: int
    code: int
    headers: dict[str, str]
    times: int


class FakeFeishuApi(RecordingServer[Call]):
    """The fake open API; use as a context manager, point `feishu_domain` at `domain`."""

    def __init__(self, users: dict[str, str] | None = None, *, app_secret: str = APP_SECRET) -> None:
        self.users = dict(users or {})  # email → open_id, for batch_get_id and users/:id
        self.app_secret = app_secret
        self.files: dict[str, tuple[str, str]] = {}  # file_key → (name, content)
        self.documents: dict[str, list[dict[str, Any]]] = {}  # 云文档 id → its top-level blocks
        self._failures: dict[str, _Failure] = {}
        self.ws_url = ""  # the long connection's WebSocket (tests/fakes/feishu_socket.py), once one is up
        super().__init__(self._handler(), "fake-feishu")

    @property
    def domain(self) -> str:
        return self.base

    # -- control and inspection ----------------------------------------------------------------
    def fail(self, method: str, *, status: int = 429, code: int = 99991400, headers: dict[str, str] | None = None,
             times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `status` and Feishu's `code` (a rate limit by default)."""
        self._failures[method] = _Failure(status, code, dict(headers or {}), times)

    def messages(self, receive_id: str | None = None) -> list[Message]:
        """Every message sent successfully (to `receive_id`), in order."""
        return [Message(c.params["receive_id_type"], c.params["receive_id"], c.params["msg_type"],
                        json.loads(c.params["content"]))
                for c in self.calls("im.message.create")
                if c.status == 200 and (receive_id is None or c.params.get("receive_id") == receive_id)]

    def wait_messages(self, count: int, receive_id: str | None = None, timeout: float = 10.0) -> list[Message]:
        """The first `count` messages (to `receive_id`), waiting for them."""
        self.wait_for("im.message.create", count=count, timeout=timeout,
                      where=lambda c: c.status == 200 and receive_id in (None, c.params.get("receive_id")))
        return self.messages(receive_id)[:count]

    # -- answering -----------------------------------------------------------------------------
    def _answer(self, method: str, params: dict[str, Any], path: str) -> dict[str, Any]:
        if method == "auth.tenant_access_token":
            if params.get("app_id") != APP_ID or params.get("app_secret") != self.app_secret:
                return {"code": 10014, "msg": "app secret invalid"}
            return {"code": 0, "msg": "ok", "tenant_access_token": TENANT_TOKEN, "expire": 7200}
        if method == "ws.endpoint":  # the long connection's address, for the app's own id and secret
            if params.get("AppID") != APP_ID or params.get("AppSecret") != self.app_secret:
                return {"code": 403, "msg": "app secret invalid"}
            if not self.ws_url:
                return {"code": 1, "msg": "system busy"}
            return {"code": 0, "msg": "ok", "data": {"URL": self.ws_url, "ClientConfig": {
                "ReconnectCount": 0, "ReconnectInterval": 1, "ReconnectNonce": 0, "PingInterval": 120}}}
        if method == "bot.info":
            return {"code": 0, "msg": "ok", "bot": {"activate_status": 2, "app_name": "weekly-bot",
                                                    "open_id": BOT_OPEN_ID}}
        if method == "im.message.create":
            return {"code": 0, "msg": "success", "data": {
                "message_id": self.next_id("om_fake"), "msg_type": params.get("msg_type"),
                "chat_id": params.get("receive_id") if params.get("receive_id_type") == "chat_id" else "oc_p2p"}}
        if method == "im.file.create":
            key = self.next_id("file_v3_fake")
            self.files[key] = (str(params.get("file_name")), str(params.get("file")))
            return {"code": 0, "msg": "success", "data": {"file_key": key}}
        if method == "contact.user.batch_get_id":
            return {"code": 0, "msg": "success", "data": {"user_list": [
                {"email": e, **({"user_id": self.users[e]} if e in self.users else {})}
                for e in params.get("emails") or []]}}
        if method == "contact.user.get":
            open_id = path.rsplit("/", 1)[-1]
            email = next((e for e, u in self.users.items() if u == open_id), None)
            if email is None:
                return {"code": 41050, "msg": "no user authority error"}
            return {"code": 0, "msg": "success", "data": {"user": {"open_id": open_id, "email": email}}}
        if method.startswith("docx."):
            return self._docx(method, params, path)
        return {"code": 0, "msg": "success"}

    def _docx(self, method: str, params: dict[str, Any], path: str) -> dict[str, Any]:
        """云文档: documents as lists of top-level blocks; Markdown converts to one text block per line."""
        parts = path.removeprefix("/open-apis/docx/v1/documents/").split("/")
        if method == "docx.create":
            doc = self.next_id("doxcnFAKE")
            self.documents[doc] = []
            return {"code": 0, "msg": "success", "data": {"document": {"document_id": doc, "revision_id": 1,
                                                                       "title": params.get("title")}}}
        if method == "docx.convert":
            lines = [ln for ln in str(params.get("content") or "").split("\n") if ln.strip()]
            blocks = [{"block_id": f"cv{n}", "block_type": 2, "text": {"elements": [{"text_run": {"content": ln}}]}}
                      for n, ln in enumerate(lines)]
            return {"code": 0, "msg": "success", "data": {"first_level_block_ids": [b["block_id"] for b in blocks],
                                                          "blocks": blocks}}
        doc = parts[0]
        if doc not in self.documents:
            return {"code": 1770002, "msg": "not found"}
        if method == "docx.children":
            return {"code": 0, "msg": "success", "data": {"items": self.documents[doc], "has_more": False}}
        if method == "docx.batch_delete":
            del self.documents[doc][int(params.get("start_index") or 0):int(params.get("end_index") or 0)]
            return {"code": 0, "msg": "success", "data": {}}
        if method == "docx.descendant":
            by_id = {b["block_id"]: b for b in params.get("descendants") or []}
            self.documents[doc] += [by_id[i] for i in params.get("children_id") or [] if i in by_id]
            return {"code": 0, "msg": "success", "data": {}}
        return {"code": 0, "msg": "success"}

    def document_text(self, doc: str) -> list[str]:
        """A document's lines, as its text blocks hold them."""
        return [e["text_run"]["content"] for b in self.documents[doc] for e in b.get("text", {}).get("elements", [])]

    @staticmethod
    def _method(http_method: str, path: str) -> str:
        p = path.removeprefix("/open-apis/")
        if p == "auth/v3/tenant_access_token/internal":
            return "auth.tenant_access_token"
        if p == "/callback/ws/endpoint":
            return "ws.endpoint"
        if p == "bot/v3/info":
            return "bot.info"
        if p == "im/v1/messages" and http_method == "POST":
            return "im.message.create"
        if p == "im/v1/files":
            return "im.file.create"
        if p == "contact/v3/users/batch_get_id":
            return "contact.user.batch_get_id"
        if p.startswith("contact/v3/users/") and http_method == "GET":
            return "contact.user.get"
        if p == "docx/v1/documents":
            return "docx.create"
        if p == "docx/v1/documents/blocks/convert":
            return "docx.convert"
        if p.startswith("docx/v1/documents/") and p.endswith("/children") and http_method == "GET":
            return "docx.children"
        if p.endswith("/children/batch_delete"):
            return "docx.batch_delete"
        if p.endswith("/descendant"):
            return "docx.descendant"
        return p

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def _handle(self, http_method: str) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                method = fake._method(http_method, url.path)
                params = self._params(url.query, body)
                failure = fake._failures.get(method)
                if failure and failure.times > 0:
                    failure.times -= 1
                    self._record(Call(method, params, url.path, failure.status))
                    self._send(failure.status, {"code": failure.code, "msg": "request trigger frequency limit"},
                               failure.headers)
                    return
                if method not in ("auth.tenant_access_token", "ws.endpoint") and \
                        self.headers.get("Authorization") != f"Bearer {TENANT_TOKEN}":
                    self._record(Call(method, params, url.path, 400))
                    self._send(400, {"code": 99991663, "msg": "Invalid access token for authorization."})
                    return
                answer = fake._answer(method, params, url.path)
                self._record(Call(method, params, url.path, 200))
                self._send(200, answer)

            def _params(self, query: str, body: bytes) -> dict[str, Any]:
                params: dict[str, Any] = dict(parse_qsl(query))
                content_type = self.headers.get("Content-Type") or ""
                if content_type.startswith("multipart/form-data"):
                    form = BytesParser(policy=HTTP).parsebytes(
                        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
                    for part in form.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True)
                        if isinstance(name, str) and isinstance(payload, bytes):
                            params[name] = payload.decode("utf-8")
                elif body:
                    params.update(json.loads(body))
                return params

            def _record(self, call: Call) -> None:
                fake.record(call)

            def _send(self, status: int, answer: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
