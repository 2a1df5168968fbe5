"""Feishu / Lark through lark-oapi: DMs, `/weekly` and card buttons become ChatBot calls; replies go out by the open API.

An HTTP request first passes our own gate (decryption, the verification token, the signature and a 5-minute
window; a 401 that never logs the body), then the SDK's EventDispatcherHandler, whose handlers do the quick,
durable part before Feishu gets its 200 (dedupe, store the answer, decide what to say). Everything slow
(the summarizer, every open API send) runs after the answer: as a Starlette background task over HTTP, on a
worker thread over the long connection.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import lark_oapi as lark
import requests
from lark_oapi.api.auth.v3 import InternalTenantAccessTokenRequest, InternalTenantAccessTokenRequestBody
from lark_oapi.api.contact.v3 import BatchGetIdUserRequest, BatchGetIdUserRequestBody, GetUserRequest
from lark_oapi.api.docx.v1 import (
    BatchDeleteDocumentBlockChildrenRequest,
    BatchDeleteDocumentBlockChildrenRequestBody,
    ConvertDocumentRequest,
    ConvertDocumentRequestBody,
    CreateDocumentBlockDescendantRequest,
    CreateDocumentBlockDescendantRequestBody,
    CreateDocumentRequest,
    CreateDocumentRequestBody,
    GetDocumentBlockChildrenRequest,
)
from lark_oapi.api.im.v1 import (
    CreateFileRequest,
    CreateFileRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
)
from lark_oapi.core.enum import AccessTokenType, HttpMethod
from lark_oapi.core.model import BaseRequest, RawRequest
from lark_oapi.core.token.manager import TokenManager
from lark_oapi.core.utils import AESCipher
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.chat import ChatBot, Outcome, Reply, command_text
from bot.config import Settings
from bot.errors import ConfigError, UserError, report_error
from bot.notify import SendError
from bot.platform import Context, Incoming, chunks
from handlers.edge import (
    AfterAck,
    ChatEdge,
    Directory,
    GroupCommit,
    OneLine,
    QuietRetries,
    RetryLater,
    body_or_refusal,
    in_worker,
    load_json,
)

logger = logging.getLogger(__name__)
logging.getLogger("Lark").addFilter(QuietRetries())  # the SDK would print the traceback of a RetryLater
logging.getLogger("Lark").addFilter(OneLine())  # and of anything it failed to parse: one line

PLATFORM = "feishu"
MAX_AGE_S = 300  # a signed request older (or newer) than this is refused: replays
API_TIMEOUT_S = 10
QUICK_TIMEOUT_S = 2  # a call made before Feishu's 3-second answer deadline
TEXT_LIMIT = 30000  # characters in one text message (Feishu allows 150 KB)
CARD_TEXT_LIMIT = 8000  # characters of text in one card (a card may be 30 KB of JSON)
CARD_CHUNK = 2000
FORM_INPUT_LIMIT = 5000  # characters in one card input
MAX_BUTTONS = 20
MAX_WAIT_S = 10.0  # the longest a rate limit is waited out
RATE_LIMITED = frozenset({99991400, 230020})  # app-wide and per-chat frequency limits
TOKEN_REFUSED = frozenset({99991661, 99991663})  # a cached tenant_access_token Feishu no longer accepts
HANDLED = frozenset({"url_verification", "im.message.receive_v1", "im.message.recalled_v1", "card.action.trigger"})
GROUPED = frozenset({"im.message.receive_v1", "im.message.recalled_v1"})  # stored in a group commit
DOC_URL = "https://feishu.cn/docx/"  # where a 云文档 opens (the tenant's own domain redirects from it)
SLOW_ACTIONS = frozenset({"publish", "regenerate", "summary", "edit_summary"})  # compiles the report: answered at once, done afterwards
_MENTION_KEY = re.compile(r"@_user_\d+")


# -- the open API ----------------------------------------------------------------------------
def api_domain(settings: Settings) -> str:
    """FEISHU_DOMAIN as the SDK wants it: an origin, no trailing slash."""
    return settings.feishu_domain.rstrip("/")


def make_client(settings: Settings, *, timeout: float = API_TIMEOUT_S) -> Any:
    """The app's lark.Client at FEISHU_DOMAIN; a UserError when the domain is not an https origin."""
    try:
        return (lark.Client.builder().app_id(settings.feishu_app_id or "").app_secret(settings.feishu_app_secret or "")
                .domain(api_domain(settings)).timeout(timeout).log_level(lark.LogLevel.WARNING).build())
    except ValueError as e:
        raise ConfigError(f"FEISHU_DOMAIN: {e}") from None


class FeishuApiError(Exception):
    """An open API call failed: Feishu's code and message, or the transport's error; never a body."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def transient(self) -> bool:
        """True for failures worth trying again later: no answer at all, or a rate limit."""
        return self.code is None or self.code in RATE_LIMITED


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    return next((v for k, v in (headers or {}).items() if k.lower() == name), None)


class FeishuApi:
    """The open API calls weekly-bot makes, retrying rate limits, dropped connections and a stale token."""

    def __init__(self, client: Any, *, retries: int = 2) -> None:
        self.client = client
        self.retries = retries

    def call(self, what: str, make: Callable[[], Any]) -> Any:
        """`make()` builds and sends one request (afresh each try: the SDK consumes bodies); its response on success."""
        attempt = 0
        while True:
            try:
                resp = make()
            except Exception as e:  # requests' errors, a token fetch refused, an answer that is not JSON
                code = getattr(e, "code", None)
                why = type(e).__name__ if isinstance(e, requests.RequestException) else f"{type(e).__name__}: {e}"
                failure = FeishuApiError(f"{what}: {why}", code=code if isinstance(code, int) else None)
                if attempt < self.retries and isinstance(e, requests.ConnectionError):
                    attempt += 1
                    continue
                raise failure from e
            if resp.success():
                return resp
            raw = getattr(resp, "raw", None)
            status = getattr(raw, "status_code", 0)
            if attempt < self.retries and (resp.code in RATE_LIMITED or status == 429):
                reset = _header(getattr(raw, "headers", None), "x-ogw-ratelimit-reset")
                wait = min(max(float(reset), 1.0), MAX_WAIT_S) if reset and reset.isdigit() else 1.0
                logger.info("Feishu: %s rate-limited; trying again in %.0f s", what, wait)
                time.sleep(wait)
                attempt += 1
                continue
            if attempt < self.retries and resp.code in TOKEN_REFUSED:
                self.forget_token()
                attempt += 1
                continue
            raise FeishuApiError(f"{what}: code {resp.code}: {resp.msg}", code=resp.code)

    def forget_token(self) -> None:
        """Drop the SDK's cached tenant_access_token so the next call fetches a new one."""
        TokenManager.cache.set(f"self_tenant_token:{self.client.config.app_id}", "", 0)

    def send(self, id_type: str, receive_id: str, msg_type: str, content: dict[str, Any],
             dedupe: str | None = None) -> str:
        """im/v1/messages: one message; the same uuid on every try, so Feishu sends it once. Its message_id.
        `dedupe` (the outgoing message's key) makes the uuid stable across ticks too: Feishu drops a repeat
        within an hour, so a send that timed out after Feishu took it is not delivered twice."""
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"weekly-bot:{dedupe}:{msg_type}")) if dedupe else str(uuid.uuid4())
        body = json.dumps(content, ensure_ascii=False)

        def make() -> Any:
            request = (CreateMessageRequest.builder().receive_id_type(id_type).request_body(
                CreateMessageRequestBody.builder().receive_id(receive_id).msg_type(msg_type).content(body).uuid(key)
                .build()).build())
            return self.client.im.v1.message.create(request)

        resp = self.call(f"sending a {msg_type} message", make)
        return str(getattr(resp.data, "message_id", "") or "")

    def upload(self, name: str, content: str) -> str:
        """im/v1/files: a file for a file message; its file_key."""

        def make() -> Any:
            body = (CreateFileRequestBody.builder().file_type("stream").file_name(name)
                    .file(io.BytesIO(content.encode("utf-8"))).build())
            return self.client.im.v1.file.create(CreateFileRequest.builder().request_body(body).build())

        return str(self.call("uploading a file", make).data.file_key)

    # -- 云文档 (docx) --------------------------------------------------------------------------
    def create_document(self, title: str) -> str:
        """docx/v1/documents: a new document; its document_id."""

        def make() -> Any:
            return self.client.docx.v1.document.create(CreateDocumentRequest.builder().request_body(
                CreateDocumentRequestBody.builder().title(title[:800]).build()).build())

        return str(self.call("creating a document", make).data.document.document_id)

    def write_markdown(self, document_id: str, markdown: str) -> None:
        """Replace the document's content by the Markdown: convert it to blocks, delete the old top-level
        blocks, insert the new ones under the page block (whose id is the document's)."""

        def convert() -> Any:
            return self.client.docx.v1.document.convert(ConvertDocumentRequest.builder().request_body(
                ConvertDocumentRequestBody.builder().content_type("markdown").content(markdown).build()).build())

        converted = self.call("converting Markdown to blocks", convert).data

        def children() -> Any:
            return self.client.docx.v1.document_block_children.get(
                GetDocumentBlockChildrenRequest.builder().document_id(document_id).block_id(document_id)
                .page_size(500).build())

        old = list(self.call("reading a document", children).data.items or [])
        if old:
            def delete() -> Any:
                return self.client.docx.v1.document_block_children.batch_delete(
                    BatchDeleteDocumentBlockChildrenRequest.builder().document_id(document_id).block_id(document_id)
                    .request_body(BatchDeleteDocumentBlockChildrenRequestBody.builder().start_index(0)
                                  .end_index(len(old)).build()).build())

            self.call("clearing a document", delete)

        def insert() -> Any:
            body = (CreateDocumentBlockDescendantRequestBody.builder()
                    .children_id(list(converted.first_level_block_ids or [])).index(0)
                    .descendants(list(converted.blocks or [])).build())
            return self.client.docx.v1.document_block_descendant.create(
                CreateDocumentBlockDescendantRequest.builder().document_id(document_id).block_id(document_id)
                .document_revision_id(-1).request_body(body).build())

        self.call("writing a document", insert)

    def open_id_by_email(self, email: str) -> str | None:
        """contact/v3/users/batch_get_id: the open_id of the user with this email, if any."""

        def make() -> Any:
            body = BatchGetIdUserRequestBody.builder().emails([email]).include_resigned(False).build()
            return self.client.contact.v3.user.batch_get_id(
                BatchGetIdUserRequest.builder().user_id_type("open_id").request_body(body).build())

        users = self.call("looking up an email", make).data.user_list or []
        return next((str(u.user_id) for u in users if u.user_id), None)

    def email_of(self, open_id: str) -> str | None:
        """contact/v3/users/:open_id: the user's email (contact:user.email:readonly), if Feishu tells it."""

        def make() -> Any:
            return self.client.contact.v3.user.get(
                GetUserRequest.builder().user_id(open_id).user_id_type("open_id").build())

        user = self.call("reading a user", make).data.user
        return (getattr(user, "email", None) or getattr(user, "enterprise_email", None) or None) if user else None

    def bot_open_id(self) -> str | None:
        """bot/v3/info (the SDK has no typed call for it): the bot's own open_id."""

        def make() -> Any:
            request = (BaseRequest.builder().http_method(HttpMethod.GET).uri("/open-apis/bot/v3/info")
                       .token_types({AccessTokenType.TENANT}).build())
            return self.client.request(request)

        raw = self.call("reading the bot's identity", make).raw
        bot = json.loads(raw.content or b"{}").get("bot") or {}
        return str(bot.get("open_id") or "") or None


def check_credentials(settings: Settings) -> tuple[bool, str]:
    """Ask Feishu for a tenant_access_token with the app id and secret (never the cached one)."""
    mode = ("HTTP and long connection" if settings.feishu_verification_token and settings.feishu_encrypt_key
            else "long connection only: set FEISHU_VERIFICATION_TOKEN and FEISHU_ENCRYPT_KEY for HTTP")
    try:
        client = make_client(settings)
    except UserError as e:
        return False, f"Feishu: {e}"
    body = (InternalTenantAccessTokenRequestBody.builder().app_id(settings.feishu_app_id or "")
            .app_secret(settings.feishu_app_secret or "").build())
    request = InternalTenantAccessTokenRequest.builder().request_body(body).build()
    try:
        FeishuApi(client, retries=0).call("tenant_access_token",
                                           lambda: client.auth.v3.tenant_access_token.internal(request))
    except FeishuApiError as e:
        if e.code is None:
            return False, f"Feishu: cannot reach {api_domain(settings)} ({e})"
        return False, f"Feishu: the app id or secret was refused ({e})"
    return True, f"Feishu: app {settings.feishu_app_id} accepted (tenant_access_token issued; {mode})"


# -- what arrives ----------------------------------------------------------------------------
class Refused(Exception):
    """A request that fails Feishu's checks; the message says which (never the body)."""


class RequestGate:
    """Feishu's checks, before the SDK sees a request: decryption, token, signature and age.

    The SDK checks the token and the signature too, but with no time window (a captured request could be
    replayed forever), with a 500 rather than a 401, and logging the failure; this gate answers 401 first.
    """

    def __init__(self, *, encrypt_key: str | None, verification_token: str | None,
                 now: Callable[[], float] = time.time) -> None:
        self.encrypt_key = encrypt_key or ""
        self.verification_token = verification_token or ""
        self.now = now

    def check(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """The request's plaintext JSON; Refused when it is not Feishu's, or not recent. A signed request's
        signature is checked on the raw bytes before anything parses them; only an unsigned one (Feishu's
        url_verification challenge, which it does not sign) is parsed first, and must then be that."""
        signed = bool(_header(headers, "x-lark-signature"))
        if self.encrypt_key and signed:
            self._check_signature(headers, body)
        plain = self._plaintext(body)
        if self.encrypt_key and not signed and plain.get("type") != "url_verification":
            raise Refused("bad signature")
        if self.verification_token:
            header = plain.get("header")
            token = header.get("token") if isinstance(header, dict) else plain.get("token")
            if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.verification_token.encode()):
                raise Refused("wrong verification token")
        return plain  # the challenge is unsigned: decrypting it and its token prove the sender

    def _plaintext(self, body: bytes) -> dict[str, Any]:
        try:
            outer = load_json(body or b"null")
        except ValueError:
            raise Refused("not JSON") from None
        if not isinstance(outer, dict):
            raise Refused("not a JSON object")
        if self.encrypt_key:
            encrypted = outer.get("encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise Refused("not encrypted, though FEISHU_ENCRYPT_KEY is set")
            try:
                inner = load_json(AESCipher(self.encrypt_key).decrypt_str(encrypted))
            except Exception:  # bad base64, padding, UTF-8 or JSON: all one answer
                raise Refused("cannot be decrypted with FEISHU_ENCRYPT_KEY") from None
            if not isinstance(inner, dict):
                raise Refused("decrypted to something other than a JSON object")
            return inner
        return outer

    def _check_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        timestamp = _header(headers, "x-lark-request-timestamp") or ""
        nonce = _header(headers, "x-lark-request-nonce") or ""
        signature = _header(headers, "x-lark-signature") or ""
        expected = hashlib.sha256((timestamp + nonce + self.encrypt_key).encode() + body).hexdigest()
        if not signature or not hmac.compare_digest(expected, signature):
            raise Refused("bad signature")
        try:
            age = abs(self.now() - int(timestamp))
        except ValueError:
            raise Refused("bad timestamp") from None
        if age > MAX_AGE_S:
            raise Refused(f"timestamp {timestamp} is {age:.0f} s away from now")


def _text_at(plain: dict[str, Any], *path: str) -> str | None:
    """The non-empty string at `path` in an event's JSON (`"event", "sender", …`), else None."""
    value: Any = plain
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None


def _chat_of(plain: dict[str, Any]) -> str | None:
    """The chat an event happened in (a DM's replies keep their order), None when it names none."""
    chat = _text_at(plain, "event", "message", "chat_id") or _text_at(plain, "event", "chat_id")
    return f"chat:{chat}" if chat else None


def _sender_of(plain: dict[str, Any]) -> str | None:
    """A message event's sender (open_id), None for any other."""
    return _text_at(plain, "event", "sender", "sender_id", "open_id")


def event_type(plain: dict[str, Any]) -> str:
    """`url_verification`, a schema 2.0 event's type, or '' (schema 1.0 events are not subscribed to)."""
    if plain.get("type") == "url_verification":
        return "url_verification"
    header = plain.get("header")
    return str(header.get("event_type") or "") if isinstance(header, dict) else ""


def to_raw_request(request: Request, body: bytes) -> RawRequest:
    """A Starlette request as the SDK's RawRequest (like lark_oapi.adapter.flask's parse_req)."""
    raw = RawRequest()
    raw.uri = request.url.path
    raw.body = body
    # the SDK reads headers by their canonical spelling (X-Lark-Signature); Starlette lower-cases them
    raw.headers = {"-".join(p.capitalize() for p in k.split("-")): v for k, v in request.headers.items()}
    return raw


def message_text(message_type: str | None, content: str | None) -> str:
    """A message's text: a `text` message's, or a `post`'s lines; '' for images, files, stickers…"""
    try:
        data = json.loads(content or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if message_type == "text":
        return str(data.get("text") or "")
    if message_type == "post":
        return _post_text(data)
    return ""


def _post_text(data: dict[str, Any]) -> str:
    """Rich text as plain lines: its title, then each paragraph's text, links and mentions."""
    if "content" not in data:  # the send format, keyed by language
        data = next((v for v in data.values() if isinstance(v, dict) and "content" in v), {})
    lines = [str(data.get("title") or "")] if data.get("title") else []
    for paragraph in data.get("content") or []:
        parts = []
        for el in paragraph if isinstance(paragraph, list) else []:
            tag = el.get("tag") if isinstance(el, dict) else None
            if tag in ("text", "a", "md", "code_block"):
                parts.append(str(el.get("text") or ""))
            elif tag == "at":
                parts.append(str(el.get("user_id") or "")
                             if str(el.get("user_id") or "").startswith("@_") else "@" + str(el.get("user_name") or ""))
        lines.append("".join(parts))
    return "\n".join(lines).strip("\n")


def resolve_mentions(text: str, mentions: list[Any] | None, bot_open_id: str | None) -> tuple[str, bool]:
    """The text with the bot's mention removed and other people's as `@name`; and whether the bot was mentioned.

    `bot_open_id` None means unknown (bot/v3/info failed): then any mention counts as the bot's, since by
    default Feishu delivers only the group messages that mention the bot. '' means no mention is the bot's.
    """
    mentioned = False
    names: dict[str, str] = {}
    for m in mentions or []:
        key = getattr(m, "key", None)
        if not key:
            continue
        open_id = getattr(getattr(m, "id", None), "open_id", None)
        if bot_open_id is None or open_id == bot_open_id:
            names[key] = ""
            mentioned = True
        else:
            names[key] = "@" + str(getattr(m, "name", "") or "")
    out = _MENTION_KEY.sub(lambda k: names.get(k.group(0), k.group(0)), text)
    return re.sub(r"[ \t]{2,}", " ", out).strip(), mentioned


@dataclass(frozen=True)
class FeishuMessage:
    """A person's message for the bot: an update in the DM, or a command (DM, or a group mentioning it)."""

    kind: Literal["message", "command"]
    open_id: str
    chat_id: str
    message_id: str
    text: str
    group: bool = False


def classify(event: Any, bot_open_id: Callable[[], str | None]) -> FeishuMessage | None:
    """What an im.message.receive_v1 event means here, or None: an app's message, or group chatter."""
    sender, message = getattr(event, "sender", None), getattr(event, "message", None)
    if sender is None or message is None or getattr(sender, "sender_type", None) != "user":
        return None  # bots and apps, this one included
    open_id = getattr(getattr(sender, "sender_id", None), "open_id", None)
    message_id, chat_id = getattr(message, "message_id", None), getattr(message, "chat_id", None)
    if not open_id or not message_id or not chat_id:
        return None
    raw = message_text(message.message_type, message.content)
    group = message.chat_type != "p2p"
    if not group:
        # in a DM only the bot's own mention goes; people's stay as @name, even when the bot's id is unknown
        text, _ = resolve_mentions(raw, message.mentions, (bot_open_id() or "") if message.mentions else "")
        words = command_text(text)
        if words is not None:
            return FeishuMessage("command", open_id, chat_id, message_id, words)
        return FeishuMessage("message", open_id, chat_id, message_id, text)
    if not message.mentions:
        return None
    text, mentioned = resolve_mentions(raw, message.mentions, bot_open_id())
    if not mentioned:
        return None
    words = command_text(text)
    return FeishuMessage("command", open_id, chat_id, message_id, text if words is None else words, group=True)


def malformed(plain: dict[str, Any]) -> str | None:
    """Why a (signed) event is not one Feishu sends, or None: the SDK then never meets a null event,
    a header without its schema, a non-string text or a card value that is not an object."""
    if plain.get("type") == "url_verification":
        return None if isinstance(plain.get("challenge"), str) else "challenge is not a string"
    header, event = plain.get("header"), plain.get("event")
    if not isinstance(header, dict) or plain.get("schema") != "2.0":
        return "not a schema 2.0 event"
    if not isinstance(event, dict):
        return "event is not an object"
    kind = header.get("event_type")
    if kind == "im.message.receive_v1":
        message, sender = event.get("message"), event.get("sender")
        if not isinstance(message, dict) or not isinstance(sender, dict):
            return "message or sender is not an object"
        for key in ("message_id", "chat_id", "chat_type", "message_type", "content"):
            if key in message and message[key] is not None and not isinstance(message[key], str):
                return f"message.{key} is not a string"
        if not isinstance(message.get("mentions") or [], list) or not isinstance(sender.get("sender_id") or {}, dict):
            return "mentions or sender_id of the wrong type"
    elif kind == "im.message.recalled_v1":
        if not isinstance(event.get("message_id") or "", str) or not isinstance(event.get("chat_id") or "", str):
            return "message_id or chat_id is not a string"
    elif kind == "card.action.trigger":
        action, operator = event.get("action"), event.get("operator")
        if not isinstance(action, dict | None) or not isinstance(operator, dict | None):
            return "action or operator is not an object"
        if action is not None and not isinstance(action.get("value") or {}, dict):
            return "action.value is not an object"
    return None


# -- what goes out ---------------------------------------------------------------------------
def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def form_card(reply: Reply) -> dict[str, Any]:
    """A card (JSON 2.0) with a form: one multiline input per field, prefilled, and a submit button whose
    callback carries {action, value} and the inputs as form_value."""
    form = reply.form
    assert form is not None
    inputs: list[dict[str, Any]] = [
        {"tag": "input", "name": f.name, "input_type": "multiline_text", "rows": 6, "max_length": FORM_INPUT_LIMIT,
         "label": {"tag": "plain_text", "content": f.label[:100]}, "label_position": "top",
         "default_value": f.initial[:FORM_INPUT_LIMIT], "width": "fill"}
        for f in form.fields
    ]
    submit = {"tag": "button", "name": "submit", "type": "primary", "form_action_type": "submit",
              "text": {"tag": "plain_text", "content": form.submit[:40]},
              "behaviors": [{"type": "callback", "value": {"action": form.action, "value": form.value}}]}
    return {"schema": "2.0", "config": {"update_multi": True},
            "header": {"title": {"tag": "plain_text", "content": form.title[:100]}},
            "body": {"elements": [{"tag": "markdown", "content": _fit(reply.text, CARD_CHUNK)},
                                  {"tag": "form", "name": "form_" + form.action, "elements": [*inputs, submit]}]}}


def card_for(reply: Reply) -> dict[str, Any]:
    """An interactive card (JSON 1.0): the text as plain-text blocks, then a button per Button.

    A button's value carries {action, value}; pressing it sends card.action.trigger to the app.
    """
    elements: list[dict[str, Any]] = [
        {"tag": "div", "text": {"tag": "plain_text", "content": chunk}}
        for chunk in chunks(_fit(reply.text, CARD_TEXT_LIMIT), CARD_CHUNK)
    ]
    buttons = [
        {"tag": "button", "text": {"tag": "plain_text", "content": b.label[:60]},
         "type": "primary" if n == 0 else "default", "value": {"action": b.action, "value": b.value}}
        for n, b in enumerate(reply.buttons[:MAX_BUTTONS])
    ]
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {"config": {"wide_screen_mode": True, "update_multi": True}, "elements": elements}


# -- people ----------------------------------------------------------------------------------
class FeishuDirectory(Directory):
    """Members and Feishu open_ids: the team file's `feishu:`, else found by email and cached in the database."""

    platform = PLATFORM
    name = "Feishu"

    def __init__(self, api: FeishuApi, quick: FeishuApi, app: Context) -> None:
        super().__init__(app)
        self.api = api
        self.quick = quick  # before an answer there is no time to wait out a rate limit: one short try

    def _lookup_email(self, email: str) -> str | None:
        try:
            return self.api.open_id_by_email(email)
        except FeishuApiError as e:
            raise SendError(f"Feishu: looking up an email failed ({e})") from e

    def _email_of(self, user_id: str) -> str | None:
        try:
            return self.quick.email_of(user_id)
        except FeishuApiError as e:
            if e.transient:  # reaches the person as "try again"; nothing is cached
                raise
            logger.warning("Feishu: cannot read a user's email (%s); grant contact:user.email:readonly", e)
            return None


# -- sending ---------------------------------------------------------------------------------
class FeishuSender:
    """bot.notify.Sender for Feishu: DMs members by open_id, posts to chats, sends files."""

    platform = PLATFORM

    def __init__(self, api: FeishuApi, directory: FeishuDirectory) -> None:
        self.api = api
        self.directory = directory

    @classmethod
    def from_app(cls, app: Context) -> FeishuSender:
        """A sender alone, for the scheduler (`clock`, `tick`)."""
        api = FeishuApi(make_client(app.settings))
        return cls(api, FeishuDirectory(api, FeishuApi(make_client(app.settings, timeout=QUICK_TIMEOUT_S), retries=0),
                                        app))

    def can_reach(self, member: str) -> bool:
        return self.directory.knows(member)

    def send(self, member: str, reply: Reply) -> None:
        """DM a member; any failure is a SendError (the caller retries later)."""
        try:
            self.post("open_id", self.directory.user_id(member), reply)
        except FeishuApiError as e:
            raise SendError(f"Feishu: sending to {member} failed: {e}") from e

    def publish(self, channel: str, reply: Reply) -> None:
        try:
            self.post_chat(channel, reply)
        except FeishuApiError as e:
            raise SendError(f"Feishu: posting to {channel} failed: {e}") from e

    def write_document(self, title: str, markdown: str, existing: str | None) -> tuple[str, str | None]:
        """A cycle's 云文档: created the first time, its content replaced when published again."""
        try:
            document_id = existing or self.api.create_document(title)
            self.api.write_markdown(document_id, markdown)
        except FeishuApiError as e:
            raise SendError(f"Feishu: writing the document failed: {e}") from e
        return document_id, f"{DOC_URL}{document_id}"

    def post_chat(self, chat_id: str, reply: Reply) -> None:
        """A reply in a chat (a DM's chat or a group, `publish.feishu`)."""
        self.post("chat_id", chat_id, reply)

    def post(self, id_type: str, receive_id: str, reply: Reply) -> None:
        """Text (a card when there are buttons), then the file as a file message."""
        if reply.form is not None:
            self.api.send(id_type, receive_id, "interactive", form_card(reply), dedupe=reply.key)
        elif reply.buttons:
            self.api.send(id_type, receive_id, "interactive", card_for(reply), dedupe=reply.key)
        elif reply.text.strip():
            self.api.send(id_type, receive_id, "text", {"text": _fit(reply.text, TEXT_LIMIT)}, dedupe=reply.key)
        if reply.file:
            name, content = reply.file
            self.api.send(id_type, receive_id, "file", {"file_key": self.api.upload(name, content)})


# -- the edge --------------------------------------------------------------------------------
class _Deferred(threading.local):
    """Work to run after the HTTP answer, collected by the request being dispatched on this thread."""

    work: list[Callable[[], None]] | None = None
    retry: bool = False  # storing failed: the SDK's 500 stands, so that Feishu delivers the event again


class FeishuEdge(ChatEdge):
    """The SDK's event dispatcher over our ChatBot, served over HTTP (`routes`) or the long connection."""

    platform = PLATFORM
    name = "Feishu"
    delivery_errors = (SendError, FeishuApiError)

    def _post_channel(self, channel: str, reply: Reply) -> None:
        self.sender.post_chat(channel, reply)

    def _apply(self, work: Callable[[], Outcome]) -> Outcome:
        try:
            return super()._apply(work)
        except RetryLater:
            self._deferred.retry = True  # the SDK's 500 means "not stored": Feishu delivers it again
            raise

    def _dm(self, member: str, reply: Reply) -> None:
        self.sender.send(member, reply)

    def __init__(self, app: Context, api: FeishuApi, quick: FeishuApi, *, encrypt_key: str | None,
                 verification_token: str | None) -> None:
        self.app = app
        self.api = api
        self.quick = quick
        self.chat = ChatBot(app.service, platforms=self.platforms)
        self.directory = FeishuDirectory(api, quick, app)
        self.sender = FeishuSender(api, self.directory)
        self.gate = RequestGate(encrypt_key=encrypt_key, verification_token=verification_token)
        self.dispatcher = (
            lark.EventDispatcherHandler.builder(encrypt_key or "", verification_token or "")
            .register_p2_im_message_receive_v1(self._on_message)
            .register_p2_im_message_recalled_v1(self._on_recall)
            .register_p2_card_action_trigger(self._on_card_action)
            .build()
        )
        self._deferred = _Deferred()
        self.group = GroupCommit(app.service.together, lambda answer: answer[1], name="Feishu")
        self.after_ack = AfterAck(4, name="feishu")
        self._bot_open_id: str | None = None

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/feishu/events", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        """Events and card callbacks: our gate, then the SDK's dispatch on a thread of its own (DMs and
        recalls in a group commit); slow work after the answers (AfterAck)."""
        return await self.after_ack.serve(self._endpoint, request)

    async def _endpoint(self, request: Request) -> Response:
        body = await body_or_refusal(request, "Feishu", "msg")
        if isinstance(body, Response):
            return body
        try:
            plain = self.gate.check(request.headers, body)
        except Refused as e:
            logger.warning("Feishu: refused a request: %s", e)
            return JSONResponse({"msg": "invalid request"}, status_code=401)
        kind = event_type(plain)
        if kind not in HANDLED:
            logger.debug("Feishu: ignored an event of type %r", kind)
            return JSONResponse({"msg": "success"})
        why = malformed(plain)
        if why:
            logger.warning("Feishu: refused a signed but malformed %s (%s)", kind, why)
            return JSONResponse({"msg": "malformed request"}, status_code=400)
        work: list[Callable[[], None]] = []
        if kind in GROUPED:  # a DM or its recall: applied in a group with those arriving now, after any
            sender = _sender_of(plain)  # open API lookup of who sent it, which must not hold up the group
            if sender and not self.directory.recognised(sender):
                await in_worker(self.directory.recognise, sender)
            try:
                answer, retry = await self.group.run(self._dispatch, to_raw_request(request, body), work)
            except RetryLater:
                return JSONResponse({"msg": "try again"}, status_code=500)
        else:
            answer, retry = await in_worker(self._dispatch, to_raw_request(request, body), work)
        status = answer.status_code
        if status >= 500 and not retry:  # the SDK's 500 for anything else it could not read
            logger.warning("Feishu: the SDK could not handle a %s (HTTP %d); answered 400", kind, status)
            return JSONResponse({"msg": "malformed request"}, status_code=400)
        if work:  # after the answer, once the requests in flight have theirs; a chat's in order
            self.after_ack.submit(_chat_of(plain), lambda: self._run_all(work))
        return Response(answer.content or b"", status_code=status, media_type="application/json")

    def _dispatch(self, raw: RawRequest, work: list[Callable[[], None]]) -> tuple[Any, bool]:
        """The SDK's answer, and whether storing failed (then its 500 stands: Feishu delivers it again)."""
        work.clear()  # run again alone after its group was rolled back: only this run's work counts
        self._deferred.work = work
        self._deferred.retry = False
        try:
            return self.dispatcher.do(raw), self._deferred.retry
        finally:
            self._deferred.work = None

    def _later(self, fn: Callable[[], None]) -> None:
        """Run `fn` after the answer: after the HTTP response, or at once on an after-ack thread (the long
        connection) — either way work that `finish` waits for when the process stops."""
        work = self._deferred.work
        if work is not None:
            work.append(fn)
        else:
            self.after_ack.submit(None, lambda: self._run_all([fn]))

    @staticmethod
    def _run_all(work: list[Callable[[], None]]) -> None:
        for fn in work:
            try:
                fn()
            except Exception as e:
                report_error("Feishu: work after the answer", e, logger)

    # -- messages ------------------------------------------------------------------------------
    def _on_message(self, data: Any) -> None:
        """Before the answer: recognise a redelivery, store the answer, decide the replies; sending waits."""
        incoming = classify(data.event, self.bot_open_id)
        if incoming is None:
            return  # not for us
        # the same message may come again under a new event id: its message id says so
        event_id = _event_id(data)
        outcome = self._apply(lambda: self._incoming(incoming, event_id))
        if not (outcome.replies or outcome.later):
            return
        chat_id = incoming.chat_id
        self._later(lambda: self._deliver(outcome, lambda r: self.sender.post_chat(chat_id, r)))

    def _incoming(self, incoming: FeishuMessage, event_id: str | None) -> Outcome:
        self.directory.recognise(incoming.open_id)
        return self.chat.handle(Incoming(PLATFORM, incoming.open_id, incoming.kind, incoming.text,
                                         message_id=incoming.message_id, event_id=event_id), strict=True)

    def _on_recall(self, data: Any) -> None:
        """A recalled (撤回) message is a deleted one: its update is removed."""
        message_id, chat_id = str(data.event.message_id or ""), str(data.event.chat_id or "")
        event_id = _event_id(data)
        outcome = self._apply(lambda: self._recalled(message_id, event_id))
        if outcome.replies:
            self._later(lambda: self._deliver(outcome, lambda r: self.sender.post_chat(chat_id, r)))

    def _recalled(self, message_id: str, event_id: str | None) -> Outcome:
        stored = self.app.service.update_for_message(PLATFORM, message_id) if message_id else None
        open_id = self.directory.known_ids().get(stored.member_key) if stored else None
        if stored is None or open_id is None:
            return Outcome()
        return self.chat.handle(Incoming(PLATFORM, open_id, "delete", message_id=message_id, event_id=event_id),
                                strict=True)

    # -- card buttons --------------------------------------------------------------------------
    def _on_card_action(self, data: Any) -> Any:
        """A button press: assigning is answered in place (the card becomes the confirmation); publishing after."""
        event = data.event
        open_id = str(getattr(event.operator, "open_id", "") or "")
        value = (event.action.value if event.action else None) or {}
        action, arg = str(value.get("action") or ""), str(value.get("value") or "")
        chat_id = getattr(event.context, "open_chat_id", None) if event.context else None
        if not open_id or not action:
            return P2CardActionTriggerResponse({})
        event_id = _event_id(data)

        def here(reply: Reply) -> None:
            if chat_id:
                self.sender.post_chat(chat_id, reply)
            else:
                self.sender.post("open_id", open_id, reply)

        form_value = getattr(event.action, "form_value", None) if event.action else None
        fields = tuple(sorted((str(k), v if isinstance(v, str) else "") for k, v in form_value.items())
                       ) if isinstance(form_value, dict) else ()

        def run(strict: bool = False) -> Outcome:
            self.directory.recognise(open_id)
            return self.chat.handle(Incoming(PLATFORM, open_id, "form" if fields else "action", action=action,
                                             value=arg, event_id=event_id, fields=fields), strict=strict)

        if action in SLOW_ACTIONS:
            self._later(lambda: self._deliver(self._safely(run), here))
            return P2CardActionTriggerResponse({})
        # an assignment is stored and marked in one transaction; if that fails, Feishu delivers the press again
        outcome = self._apply(lambda: run(strict=True)) if action == "assign" else self._safely(run)
        now = next((r for r in outcome.replies if not (r.to or r.channel or r.file)), None)
        rest = Outcome([r for r in outcome.replies if r is not now], outcome.later)
        if rest.replies or rest.later:
            self._later(lambda: self._deliver(rest, here))
        if now is None:
            return P2CardActionTriggerResponse({})
        return P2CardActionTriggerResponse({"card": {"type": "raw", "data": form_card(now) if now.form else card_for(now)}})

    # -- shared --------------------------------------------------------------------------------
    def bot_open_id(self) -> str | None:
        """The bot's open_id (bot/v3/info), asked once; None while Feishu does not say."""
        if self._bot_open_id is None:
            try:
                self._bot_open_id = self.quick.bot_open_id()
            except FeishuApiError as e:
                logger.warning("Feishu: cannot read the bot's identity (%s); any mention counts as the bot's", e)
        return self._bot_open_id


def _event_id(data: Any) -> str | None:
    header = getattr(data, "header", None)
    return getattr(header, "event_id", None) if header is not None else None


def build_feishu(app: Context, *, long_connection: bool = False) -> FeishuEdge:
    """The Feishu edge from the settings; a UserError naming what is missing."""
    s = app.settings
    needed = {"FEISHU_APP_ID": s.feishu_app_id, "FEISHU_APP_SECRET": s.feishu_app_secret}
    if not long_connection:
        needed |= {"FEISHU_VERIFICATION_TOKEN": s.feishu_verification_token, "FEISHU_ENCRYPT_KEY": s.feishu_encrypt_key}
    missing = [name for name, value in needed.items() if not value]
    if missing:
        how = "The Feishu long connection" if long_connection else "Feishu over HTTP"
        names = list(needed)
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(f"{how} needs {', '.join(names[:-1])} and {names[-1]}: {', '.join(missing)} {verb} not set")
    api = FeishuApi(make_client(s))
    quick = FeishuApi(make_client(s, timeout=QUICK_TIMEOUT_S), retries=0)
    if long_connection:  # the connection itself is authenticated by the app id and secret
        return FeishuEdge(app, api, quick, encrypt_key=None, verification_token=None)
    return FeishuEdge(app, api, quick, encrypt_key=s.feishu_encrypt_key, verification_token=s.feishu_verification_token)


class _LongConnection(lark.ws.Client):
    """lark.ws.Client that also dispatches `card` frames, which lark-oapi 1.7 drops unanswered.

    Feishu may deliver card.action.trigger over the long connection as a `card` frame; unanswered, the
    person sees error 200340. Relabelled `event`, the SDK dispatches it like any event and answers it.
    """

    async def _handle_data_frame(self, frame: Any) -> None:
        for header in frame.headers:
            if header.key == "type" and header.value == "card":
                header.value = "event"
        await super()._handle_data_frame(frame)


def long_connection_client(edge: FeishuEdge) -> Any:
    """The long connection's client for the edge's dispatcher (not yet connected)."""
    s = edge.app.settings
    return _LongConnection(s.feishu_app_id or "", s.feishu_app_secret or "", event_handler=edge.dispatcher,
                           domain=api_domain(s), log_level=lark.LogLevel.WARNING)


def run_long_connection(edge: FeishuEdge) -> None:
    """Receive the same events over Feishu's long connection until interrupted."""
    logger.info("Feishu: connecting over the long connection to %s", api_domain(edge.app.settings))
    long_connection_client(edge).start()
