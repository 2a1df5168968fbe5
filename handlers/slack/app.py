"""Slack through Bolt: DMs, `/weekly` and button presses become ChatBot calls; replies go out by the Web API.

Each request kind has a Bolt ack function (DMs and `/weekly` through one global middleware, `_HotPaths`;
buttons and forms through listeners) that hands what is left to an after-function. The ack function does
the quick, durable part before Slack gets its 200 (dedupe, store the answer, decide what to say); the
after-function runs on a thread of the edge's own and does everything slow: the summarizer, Web API
calls, waiting out a 429. (Bolt's lazy listeners would do the same, but copy the whole request for each
and start one for every request, even when nothing is left to do.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from slack_bolt import App as BoltApp
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.context.ack import Ack
from slack_bolt.context.respond import Respond
from slack_bolt.error import BoltError
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.chat import ChatBot, Outcome, Reply
from bot.config import Settings
from bot.errors import ConfigError, report_error
from bot.i18n import t
from bot.notify import RateLimited, SendError
from bot.platform import Context, Form, Incoming, chunks
from handlers.edge import (
    AfterAck,
    ChatEdge,
    Directory,
    GroupCommit,
    QuietRetries,
    RetryLater,
    body_or_refusal,
    in_worker,
    load_json,
)

logger = logging.getLogger(__name__)

PLATFORM = "slack"
COMMAND = "/weekly"  # the slash command (manifest.yml)
ACTION_PREFIX = "weekly_"
FORM_PREFIX = "weekly_form_"  # a modal's callback_id: weekly_form_<ChatBot form action>
AFTER_THREADS = 10  # after-functions running at once (as many as Bolt's own listener executor)
BLOCK_TEXT_LIMIT = 3000  # Block Kit: characters in one section's text
MESSAGE_TEXT_LIMIT = 39000  # chat.postMessage truncates text past 40,000 characters
MAX_BLOCKS = 50
MAX_BUTTONS = 25
INPUT_LIMIT = 3000  # Block Kit: characters in a plain_text_input
QUICK_TIMEOUT_S = 2  # a Web API call made before Slack's 3-second ack
MAX_AGE_S = 300  # a signed request older (or newer) than this is refused: replays
HISTORY_LOOKBACK = 30  # messages of a DM searched for one a crashed sender may have sent
_MARKUP = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


# -- the Web API client ----------------------------------------------------------------------
def make_client(settings: Settings) -> WebClient:
    """The bot token's Web API client at SLACK_API_URL, retrying 429s (Retry-After) and dropped connections."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url.rstrip("/") + "/",
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def check_credentials(settings: Settings) -> tuple[bool, str]:
    """Ask Slack (auth.test) whether it accepts the bot token."""
    mode = "Socket Mode" if settings.slack_app_token else "HTTP"
    try:
        who = make_client(settings).auth_test()
    except SlackApiError as e:
        return False, f"Slack: the bot token was refused ({e.response.get('error', 'error')})"
    except (SlackClientError, OSError) as e:
        return False, f"Slack: cannot reach {settings.slack_api_url} ({describe(e)})"
    return True, f"Slack: token accepted for @{who.get('user')} in {who.get('team')} ({mode})"


def describe(error: Exception) -> str:
    """A Web API failure in one short line: Slack's error code, never a request or message body."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or f"HTTP {error.response.status_code}")
    return f"{type(error).__name__}: {error}"


# -- Slack's text markup ---------------------------------------------------------------------
def from_slack(text: str, name_of: Callable[[str], str | None]) -> str:
    """Slack's message markup as plain text: mentions and links readable, &amp; &lt; &gt; decoded."""

    def one(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "@" + (name_of(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0]).lstrip("@")
        url = target.removeprefix("mailto:")
        if not label or label in target:
            return label or url
        return f"{label} ({url})"

    plain = _MARKUP.sub(one, text or "")
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def to_slack(text: str) -> str:
    """Plain text as Slack markup: & < > escaped, except a leading `>` that quotes a line."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"(?m)^&gt;", ">", escaped)


def action_id(action: str, n: int) -> str:
    """`weekly_assign`, then `weekly_assign.2`…: action ids must be unique within a block."""
    return f"{ACTION_PREFIX}{action}" if n == 1 else f"{ACTION_PREFIX}{action}.{n}"


def action_of(slack_action_id: str) -> str:
    """The ChatBot action (`assign`, `publish`) behind a button's action id."""
    return slack_action_id.removeprefix(ACTION_PREFIX).split(".", 1)[0]


def blocks_for(reply: Reply) -> list[dict[str, Any]] | None:
    """Block Kit for a reply with buttons (its text in sections, then the buttons); None without buttons."""
    if not reply.buttons:
        return None
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
        for chunk in chunks(to_slack(reply.text), BLOCK_TEXT_LIMIT)
    ][: MAX_BLOCKS - 1]
    seen: dict[str, int] = {}
    elements = []
    for b in reply.buttons[:MAX_BUTTONS]:
        seen[b.action] = seen.get(b.action, 0) + 1
        elements.append({"type": "button", "text": {"type": "plain_text", "text": b.label[:75]},
                         "action_id": action_id(b.action, seen[b.action]), "value": b.value})
    blocks.append({"type": "actions", "elements": elements})
    return blocks


def fallback_text(text: str) -> str:
    """A message's `text` (notifications, and the whole message when it has no blocks)."""
    escaped = to_slack(text)
    return escaped if len(escaped) <= MESSAGE_TEXT_LIMIT else escaped[: MESSAGE_TEXT_LIMIT - 1] + "…"


# -- what a signed request must look like before Bolt reads it --------------------------------
def _shape(body: bytes, content_type: str) -> tuple[str | None, dict[str, Any] | None]:
    """Why a (signed) request is not one Slack sends, or None — Bolt and our listeners then never see a
    non-object event, a non-string text, an empty actions list or invalid UTF-8 — and the body read: an
    event callback's JSON object, a slash command's fields (None for an interactive payload)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8", None
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(text, keep_blank_values=True)
        if "payload" not in form:
            if "command" not in form:
                return "neither a command nor a payload", None
            return None, {k: v[-1] for k, v in form.items()}
        try:
            payload = load_json(form["payload"][0])
        except ValueError as e:
            return f"payload: {e}", None
        if not isinstance(payload, dict) or not isinstance(payload.get("user") or {}, dict):
            return "payload is not an object with a user", None
        if "view" in payload and not isinstance(payload["view"], dict):
            return "payload.view is not an object", None
        why = _wrong_types(payload, objects=("team", "enterprise", "channel", "container", "view", "message",
                                             "state"),
                           strings=("type", "trigger_id", "response_url", "api_app_id", "token", "callback_id"))
        if why:
            return f"payload.{why}", None
        for part in ("user", "team", "enterprise", "channel", "view"):
            why = _wrong_types(payload.get(part) or {}, objects=("state",),
                               strings=("id", "team_id", "enterprise_id", "private_metadata", "callback_id"))
            if why:
                return f"payload.{part}.{why}", None
        why = _unsafe_for_bolt(payload)
        if why:
            return f"payload.{why}", None
        actions = payload.get("actions")
        if payload.get("type") == "block_actions" and not (  # Bolt's matcher indexes the first one's action_id
                isinstance(actions, list) and actions and all(isinstance(a, dict) for a in actions)
                and isinstance(actions[0].get("action_id"), str)):
            return "block_actions without actions, each an object, the first with an action_id", None
        return None, None
    try:
        data = load_json(text or "null")
    except ValueError as e:
        return str(e), None
    if not isinstance(data, dict):
        return "not a JSON object", None
    why = _wrong_types(data, objects=("event",), strings=("type", "team_id", "enterprise_id", "api_app_id",
                                                          "event_id", "token", "challenge"))
    if why:
        return why, None
    auths = data.get("authorizations")
    if auths is not None and not (isinstance(auths, list) and all(isinstance(a, dict) for a in auths)):
        return "authorizations is not a list of objects", None
    if data.get("type") == "event_callback":
        event = data.get("event")
        if not isinstance(event, dict):
            return "event is not an object", None
        for key in ("text", "user", "channel", "ts", "subtype", "channel_type"):
            if key in event and event[key] is not None and not isinstance(event[key], str):
                return f"event.{key} is not a string", None
        for key in ("message", "previous_message"):
            if key in event and not isinstance(event[key], dict | None):
                return f"event.{key} is not an object", None
    return _unsafe_for_bolt(data), data


def _bolt_request(request: Request, body: bytes, data: dict[str, Any] | None) -> BoltRequest:
    """Bolt's request for a body already checked (signature, shape). An event or a command goes with the
    fields `_shape` read (`data`), not parsed a second time: a dict body is how Bolt's Socket Mode hands
    over what its socket read, and the request is then labelled HTTP with its raw body, as Bolt's own
    adapter makes it (Bolt reads the label only to check a signature, which ours has done, and to copy a
    request for lazy listeners, which we have none of). It also keeps Bolt's form parsing away from a
    command that says "payload" (`/weekly edit` about a payment payload): Bolt takes any such form for an
    interactive payload and would have read it as {}. An interactive payload goes as its raw body."""
    if data is None:
        return to_bolt_request(request, body)
    req = BoltRequest(body=data, query=request.query_params, headers=request.headers,  # type: ignore[arg-type]
                      mode="socket_mode")
    req.raw_body, req.mode = body.decode("utf-8"), "http"
    return req


_IDS = ("user", "team", "channel", "enterprise")  # Bolt reads each as a string id or an object with an "id"
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread")  # where Bolt looks for them too


def _unsafe_for_bolt(obj: dict[str, Any], depth: int = 0) -> str | None:
    """A value of a type Bolt's context building (slack_bolt.request.internals) cannot take — it raises
    TypeError on, say, `"user": true` in a payload's message — or None."""
    for key in _IDS:
        if not isinstance(obj.get(key), str | dict | None):
            return f"{key} is neither a string nor an object"
    for key in ("authorizations", "response_urls"):
        value = obj.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{key} is not a list of objects"
    if obj.get("is_ext_shared_channel") is True and obj.get("type") == "event_callback" \
            and not isinstance(obj.get("event"), dict):
        return "event is not an object"
    if depth < 3:
        auths = obj.get("authorizations") or []
        for key, inner in [*((k, obj.get(k)) for k in _NESTED), *(("authorizations[0]", a) for a in auths[:1])]:
            if isinstance(inner, dict):
                why = _unsafe_for_bolt(inner, depth + 1)
                if why:
                    return f"{key}.{why}"
    return None


def _wrong_types(obj: dict[str, Any], *, objects: tuple[str, ...], strings: tuple[str, ...]) -> str | None:
    """The first key whose value has a type Slack never sends there (None counts as absent)."""
    for key in objects:
        if obj.get(key) is not None and not isinstance(obj[key], dict):
            return f"{key} is not an object"
    for key in strings:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return f"{key} is not a string"
    return None


# -- which events concern us -----------------------------------------------------------------
@dataclass(frozen=True)
class DirectMessage:
    """A person's message in their DM with the bot: new, edited or deleted."""

    kind: Literal["message", "edit", "delete"]
    user: str
    channel: str
    ts: str
    text: str = ""
    changed: float | None = None  # when the message was written, edited or deleted (Slack's ts)

    @property
    def message_id(self) -> str:
        return f"{self.channel}:{self.ts}"


_PLAIN_SUBTYPES = (None, "file_share", "thread_broadcast")


def _from_bot(message: dict[str, Any]) -> bool:
    return bool(message.get("bot_id") or message.get("bot_profile") or message.get("subtype") == "bot_message")


def classify(event: dict[str, Any]) -> DirectMessage | None:
    """What a `message` event means here, or None: not a DM, a bot's, or a change that isn't the text."""
    if event.get("channel_type") != "im":
        return None
    channel, subtype = str(event.get("channel") or ""), event.get("subtype")
    if subtype in _PLAIN_SUBTYPES:
        if _from_bot(event) or not event.get("user"):
            return None
        return DirectMessage("message", event["user"], channel, str(event.get("ts")), event.get("text") or "",
                             _ts(event.get("ts")))
    if subtype == "message_changed":
        new, old = event.get("message") or {}, event.get("previous_message") or {}
        if _from_bot(new) or not new.get("user") or new.get("subtype") not in _PLAIN_SUBTYPES:
            return None
        if old and new.get("text") == old.get("text"):  # a link unfurled, a file added: nothing to store
            return None
        edited = new.get("edited")
        when = edited.get("ts") if isinstance(edited, dict) else None
        return DirectMessage("edit", new["user"], channel, str(new.get("ts")), new.get("text") or "",
                             _ts(when or event.get("event_ts") or event.get("ts")))
    if subtype == "message_deleted":
        old = event.get("previous_message") or {}
        if _from_bot(old) or not old.get("user"):
            return None
        return DirectMessage("delete", old["user"], channel, str(event.get("deleted_ts") or old.get("ts")),
                             changed=_ts(event.get("event_ts") or event.get("ts")))
    return None


def _ts(value: object) -> float | None:
    """A Slack timestamp (`"1728957600.000200"`) as a number, for ordering changes; None when it is none."""
    try:
        return float(str(value))
    except ValueError:
        return None


# -- people ----------------------------------------------------------------------------------
class SlackDirectory(Directory):
    """Members and Slack user ids: the team file's ids, else found by email and cached in the database."""

    platform = PLATFORM
    name = "Slack"

    def __init__(self, client: WebClient, app: Context) -> None:
        super().__init__(app)
        self.client = client
        # before an ack there is no time to wait out a 429: one short try, no retries
        self._quick = WebClient(token=client.token, base_url=client.base_url, timeout=QUICK_TIMEOUT_S,
                                retry_handlers=[])

    def _lookup_email(self, email: str) -> str | None:
        try:
            return str(self.client.users_lookupByEmail(email=email)["user"]["id"])
        except SlackApiError as e:
            if e.response.get("error") == "users_not_found":
                return None
            raise SendError(f"Slack: looking up an email failed ({describe(e)})") from e

    def _email_of(self, user_id: str) -> str | None:
        # a failure here (a 429, say) reaches the person as "try again", and nothing is cached
        profile = self._quick.users_info(user=user_id)["user"].get("profile") or {}
        return str(profile.get("email") or "") or None


# -- sending ---------------------------------------------------------------------------------
class SlackSender:
    """bot.notify.Sender for Slack: DMs members, posts to channels, uploads files (files upload v2)."""

    platform = PLATFORM

    def __init__(self, client: WebClient, directory: SlackDirectory) -> None:
        self.client = client
        self.directory = directory
        self._dm_channels: dict[str, str] = {}
        # for the scheduler's fan-out: a 429 comes back at once (RateLimited) instead of being slept out here
        self._once = WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                               retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)])

    @classmethod
    def from_app(cls, app: Context) -> SlackSender:
        """A sender alone, for the scheduler (`clock`, `tick`): the Web API client without Bolt."""
        client = make_client(app.settings)
        return cls(client, SlackDirectory(client, app))

    def can_reach(self, member: str) -> bool:
        return self.directory.knows(member)

    def send(self, member: str, reply: Reply) -> None:
        """DM a member; any failure is a SendError (the caller retries later). A message with a key carries
        it as message metadata, so that `delivered` can find it after a crash."""
        self._send(self.client, member, reply)

    def try_send(self, member: str, reply: Reply) -> None:
        """`send` in one attempt: a 429 raises RateLimited with Slack's Retry-After, for the caller to
        schedule, while its other sends go on."""
        try:
            self._send(self._once, member, reply)
        except SendError as e:
            cause = e.__cause__
            if isinstance(cause, SlackApiError) and cause.response.status_code == 429:
                raise RateLimited(str(e), _retry_after(cause.response.headers)) from cause
            raise

    def _send(self, client: WebClient, member: str, reply: Reply) -> None:
        try:
            user_id = self.directory.user_id(member)
            # chat.postMessage takes the user id as the channel (the bot's DM with them): no conversations.open;
            # a file needs the DM's channel id
            self.post(self.dm_channel(user_id) if reply.file else user_id, reply, key=reply.key, client=client)
        except SendError:
            raise
        except (SlackClientError, OSError) as e:
            raise SendError(f"Slack: sending to {member} failed: {describe(e)}") from e

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with a user (conversations.open), remembered."""
        channel = self._dm_channels.get(user_id)
        if channel is None:
            channel = str(self.client.conversations_open(users=user_id)["channel"]["id"])
            self._dm_channels[user_id] = channel
        return channel

    def publish(self, channel: str, reply: Reply) -> None:
        try:
            self.post(channel, reply)
        except (SlackClientError, OSError) as e:
            raise SendError(f"Slack: posting to {channel} failed: {describe(e)}") from e

    def write_document(self, title: str, markdown: str, existing: str | None) -> tuple[str, str | None]:
        """A cycle's canvas: canvases.create the first time, canvases.edit (replace) when published again."""
        content = {"type": "markdown", "markdown": markdown}
        try:
            if existing:
                self.client.canvases_edit(canvas_id=existing, changes=[{"operation": "replace",
                                                                        "document_content": content}])
                return existing, None
            return str(self.client.canvases_create(title=title, document_content=content)["canvas_id"]), None
        except (SlackClientError, OSError) as e:
            raise SendError(f"Slack: writing the canvas failed: {describe(e)}") from e

    def delivered(self, member: str, key: str) -> bool:
        """Whether a message with this key is among the bot's latest in the member's DM (a sender that died
        right after Slack took it never marked it sent)."""
        try:
            history = self.client.conversations_history(channel=self.dm_channel(self.directory.user_id(member)),
                                                        limit=HISTORY_LOOKBACK, include_all_metadata=True)
        except (SlackClientError, OSError, SendError) as e:
            raise SendError(f"Slack: reading {member}'s DM failed: {describe(e)}") from e
        return any(((m.get("metadata") or {}).get("event_payload") or {}).get("key") == key
                   for m in history.get("messages") or [])

    def post(self, channel: str, reply: Reply, *, key: str | None = None, client: WebClient | None = None) -> None:
        """A reply in a channel: text and buttons as a message, a file uploaded (with the text when alone)."""
        if reply.file and not reply.buttons:
            self.upload(channel, reply.file, comment=reply.text)
            return
        if reply.text.strip() or reply.buttons:
            extra: dict[str, Any] = {"blocks": blocks_for(reply)} if reply.buttons else {}
            if key:
                extra["metadata"] = {"event_type": "weekly_bot_message", "event_payload": {"key": key}}
            (client or self.client).chat_postMessage(channel=channel, text=fallback_text(reply.text), **extra)
        if reply.file:
            self.upload(channel, reply.file)

    def upload(self, channel: str, file: tuple[str, str], comment: str | None = None) -> None:
        name, content = file
        extra: dict[str, Any] = {"initial_comment": fallback_text(comment)} if comment and comment.strip() else {}
        self.client.files_upload_v2(channel=channel, filename=name, title=name, content=content, **extra)


def _retry_after(headers: Any) -> float:
    """Slack's Retry-After (seconds), 1 when it gives none or none that reads."""
    for k, v in dict(headers or {}).items():
        if k.lower() == "retry-after":
            try:
                return max(0.0, float(v[0] if isinstance(v, list) else v))
            except (TypeError, ValueError, IndexError):
                break
    return 1.0


# -- the signature check ---------------------------------------------------------------------
# -- the edge --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    """What an ack function leaves for its after-function: replies still to send, slow work to run."""

    user_id: str
    channel: str | None = None  # the DM the event came from; None for commands and buttons
    replies: tuple[Reply, ...] = ()
    later: Callable[[], list[Reply]] | None = None


class SlackEdge(ChatEdge):
    """The Bolt app over our ChatBot, served over HTTP (`routes`) or Socket Mode (`run_socket_mode`)."""

    platform = PLATFORM
    name = "Slack"
    delivery_errors = (SendError, SlackClientError, OSError)

    def _post_channel(self, channel: str, reply: Reply) -> None:
        self.sender.post(channel, reply)

    def _dm(self, member: str, reply: Reply) -> None:
        self.sender.send(member, reply)

    def _describe(self, error: BaseException) -> str:
        return describe(error) if isinstance(error, Exception) else str(error)

    def __init__(self, app: Context, client: WebClient, *, signing_secret: str | None) -> None:
        self.app = app
        self.client = client
        self.chat = ChatBot(app.service, platforms=self.platforms)
        self.directory = SlackDirectory(client, app)
        self.sender = SlackSender(client, self.directory)
        self.bolt = _bolt_app(client, signing_secret)
        self.verifier = signing_secret.encode() if signing_secret else None  # the HMAC key
        self.after_ack = AfterAck(AFTER_THREADS, name="slack")
        self.group = GroupCommit(app.service.together, lambda r: r.status >= 500, name="Slack")
        self.bolt.use(_HotPaths(on_command=self._on_command, on_message=self._on_message))
        self.bolt.action(re.compile("^" + ACTION_PREFIX))(self._on_action)
        self.bolt.view(re.compile("^" + FORM_PREFIX))(self._on_form)

    def _after(self, key: str | None, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` once the ack function returns, on one of the edge's after-ack threads; after the
        work left earlier under the same `key` (a person's DMs: their confirmations keep the DMs' order),
        else alongside it (a command's slow work holds up nothing else)."""

        def run() -> None:
            try:
                fn(*args)
            except Exception as e:  # each after-function guards its own deliveries; this is a last resort
                report_error(f"{self.name}: work after the ack", e, logger)

        if not self.group.hold(lambda: self.after_ack.submit(key, run)):  # in a group: once it has committed
            self.after_ack.submit(key, run)

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/slack/events", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        """Events, commands and interactivity. The body is read up to 1 MiB (413 past it), its signature
        checked on the raw bytes (401), then its shape (400), and only then does Bolt parse and dispatch
        it, on a thread of its own (it blocks on the database): DMs in a group commit, commands on its
        thread beside it. Work after the acks waits while requests are in flight (AfterAck)."""
        return await self.after_ack.serve(self._endpoint, request)

    async def _endpoint(self, request: Request) -> Response:
        body = await body_or_refusal(request, "Slack", "error")
        if isinstance(body, Response):
            return body
        if self.verifier is not None and not self._signed(request, body):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        why, data = _shape(body, request.headers.get("content-type") or "")
        if why:
            logger.warning("Slack: refused a signed but malformed request (%s)", why)
            return JSONResponse({"error": "malformed request"}, status_code=400)
        event = (data or {}).get("event") or {}
        if data is not None and (event.get("type") == "message" or "command" in data):
            # a DM (or its edit or deletion): applied in a group with those arriving now, after any Web API
            # lookup of who sent it, which must not hold up the group. A command runs on the group's thread
            # too, but outside its transaction (GroupCommit.run): it never waits for the group's write lock
            # nor fails with it (Slack does not retry a command)
            user = str(event.get("user") or data.get("user_id") or "")
            if user and not self.directory.recognised(user):
                await in_worker(self.directory.recognise, user)
            try:
                response = await self.group.run(self.bolt.dispatch, _bolt_request(request, body, data),
                                                outside="command" in data)
            except RetryLater:
                return JSONResponse({"error": "try again"}, status_code=500)
        else:
            response = await in_worker(self.bolt.dispatch, _bolt_request(request, body, data))
        if response.status == 404:  # an event type we do not subscribe to: nothing to do, and no retry wanted
            return Response(status_code=200)
        return to_starlette_response(response)

    def _signed(self, request: Request, body: bytes) -> bool:
        """Slack's v0 HMAC over the raw bytes (whatever they decode to), within five minutes."""
        assert self.verifier is not None
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_AGE_S:
            expected = "v0=" + hmac.new(self.verifier, b"v0:" + timestamp.encode() + b":" + body,
                                        hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature):
                return True
        logger.warning("Slack: refused a request with a bad or expired signature (timestamp %r)", timestamp[:20])
        return False

    # -- DMs -----------------------------------------------------------------------------------
    def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Before the ack: recognise a redelivery, store the answer (or edit, or deletion), decide the replies."""
        dm = classify(event)
        if dm is None:
            return
        event_id = str(body.get("event_id") or "") or None
        outcome = self._apply(lambda: self._direct_message(dm, event_id))
        if outcome.replies or outcome.later:
            self._after(f"dm:{dm.user}", self._after_message, Pending(dm.user, dm.channel, tuple(outcome.replies), outcome.later))

    def _direct_message(self, dm: DirectMessage, event_id: str | None) -> Outcome:
        self.directory.recognise(dm.user)
        text = from_slack(dm.text, self.directory.name_of) if dm.kind != "delete" else ""
        return self.chat.handle(Incoming(PLATFORM, dm.user, dm.kind, text, message_id=dm.message_id,
                                         event_id=event_id, ts=dm.changed), strict=True)

    def _after_message(self, pending: Pending) -> None:
        """After the ack: the replies, in the DM the message came from."""
        if pending.channel:
            channel = pending.channel
            self._deliver(Outcome(list(pending.replies), pending.later), lambda r: self.sender.post(channel, r))

    # -- /weekly -------------------------------------------------------------------------------
    def _on_command(self, ack: Ack, command: dict[str, Any]) -> None:
        """Ack at once with what can be said now (ephemeral); slow work and other recipients wait."""
        user = str(command.get("user_id") or "")

        def run() -> Outcome:
            self.directory.recognise(user)
            text = from_slack(command.get("text") or "", self.directory.name_of)
            return self.chat.handle(Incoming(PLATFORM, user, "command", text))

        outcome = self._safely(run)
        now = [r for r in outcome.replies if not (r.to or r.channel or r.file or r.form)]
        rest = tuple(r for r in outcome.replies if r not in now)
        blocks = [b for r in now for b in blocks_for(r) or ()]
        text = fallback_text("\n\n".join(r.text for r in now))
        if now:
            ack(text=text, blocks=blocks or None)
        else:
            ack()
        if rest or outcome.later:
            self._after(None, self._after_command, Pending(user, None, rest, outcome.later), command)

    def _after_command(self, pending: Pending, command: dict[str, Any]) -> None:
        trigger = str(command.get("trigger_id") or "")
        url = str(command.get("response_url") or "")
        respond = Respond(response_url=url) if url else None
        self._deliver(Outcome(list(pending.replies), pending.later),
                      lambda r: self._respond(respond, pending.user_id, r, trigger=(trigger, url)))

    # -- buttons -------------------------------------------------------------------------------
    def _on_action(self, ack: Ack, body: dict[str, Any]) -> None:
        """Ack a button press at once: publishing compiles the report, which may take a while."""
        ack()
        self._after(None, self._after_action, body)

    def _after_action(self, body: dict[str, Any]) -> None:
        url = str(body.get("response_url") or "")
        respond = Respond(response_url=url) if url else None
        user = str((body.get("user") or {}).get("id") or "")
        pressed = (body.get("actions") or [{}])[0]
        action = action_of(str(pressed.get("action_id") or ""))
        value = str(pressed.get("value") or "")
        outcome = self._safely(lambda: self.chat.handle(Incoming(PLATFORM, user, "action", action=action, value=value)))
        replace = action == "assign"  # the question with the buttons becomes the confirmation
        trigger = (str(body.get("trigger_id") or ""), str(body.get("response_url") or ""))
        self._deliver(outcome,
                      lambda r: self._respond(respond, user, r, replace=replace, trigger=trigger))

    # -- forms (modals) ------------------------------------------------------------------------
    def _open_form(self, trigger_id: str, form: Form, response_url: str) -> None:
        """A modal with one multiline input per field, prefilled; its submission comes back as view_submission."""
        blocks = [{"type": "input", "block_id": f.name, "optional": True,
                   "label": {"type": "plain_text", "text": f.label[:2000]},
                   "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                               "max_length": INPUT_LIMIT, **({"initial_value": f.initial[:INPUT_LIMIT]} if f.initial else {})}}
                  for f in form.fields]
        view = {"type": "modal", "callback_id": FORM_PREFIX + form.action,
                "title": {"type": "plain_text", "text": form.title[:24]},
                "submit": {"type": "plain_text", "text": form.submit[:24]},
                "private_metadata": json.dumps({"value": form.value, "response_url": response_url})[:3000],
                "blocks": blocks}
        self.client.views_open(trigger_id=trigger_id, view=view)

    def _on_form(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A submitted modal: an empty one is refused in place (response_action errors); otherwise stored before
        the ack, and the fresh preview follows it."""
        user = str((body.get("user") or {}).get("id") or "")
        values = (view.get("state") or {}).get("values") or {}
        fields = {block: str(((v or {}).get("text") or {}).get("value") or "") for block, v in values.items()
                  if isinstance(v, dict)}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        if not any(x.strip() for x in fields.values()):
            lang = self.chat.lang(self.chat.member(PLATFORM, user))
            ack(response_action="errors", errors={name: t(lang, "form_empty") for name in fields} or {})
            return
        action = str(view.get("callback_id") or "").removeprefix(FORM_PREFIX)
        outcome = self._safely(lambda: self.chat.handle(Incoming(PLATFORM, user, "form", action=action,
                                                                 value=str(meta.get("value") or ""),
                                                                 fields=tuple(sorted(fields.items())))))
        ack()
        if outcome.replies or outcome.later:
            self._after(None, self._after_form, Pending(user, str(meta.get("response_url") or "") or None,
                                                  tuple(outcome.replies), outcome.later))

    def _after_form(self, pending: Pending) -> None:
        """After the ack: the new preview replaces the old one (its response_url), else goes to the DM."""
        url = pending.channel
        respond = Respond(response_url=url) if url else None
        user = pending.user_id

        def here(r: Reply) -> None:
            if respond is not None:
                self._respond(respond, user, r)
            else:
                self.sender.post(self.sender.dm_channel(user), r)

        self._deliver(Outcome(list(pending.replies), pending.later), here)

    # -- shared --------------------------------------------------------------------------------
    def _respond(self, respond: Respond | None, user_id: str, reply: Reply, *, replace: bool = False,
                 trigger: tuple[str, str] = ("", "")) -> None:
        """Answer whoever typed or pressed, through response_url; a file (or a failed answer, or no
        response_url) goes to their DM; a form opens as a modal (with the trigger of the press or command
        that asked for it)."""
        if reply.form is not None and trigger[0]:
            try:
                self._open_form(trigger[0], reply.form, trigger[1])
                return
            except (SlackClientError, OSError) as e:
                logger.warning("Slack: views.open failed (%s)", describe(e))
        if reply.text.strip() or reply.buttons:
            try:
                kind: dict[str, Any] = {"replace_original": True} if replace else {"response_type": "ephemeral"}
                ok = respond is not None and respond(
                    text=fallback_text(reply.text), blocks=blocks_for(reply), **kind).status_code == 200
            except (SlackClientError, OSError) as e:
                logger.warning("Slack: response_url failed (%s); sending to the DM instead", describe(e))
                ok = False
            if not ok:
                self.sender.post(self.sender.dm_channel(user_id), Reply(reply.text, reply.buttons))
        if reply.file:
            self.sender.upload(self.sender.dm_channel(user_id), reply.file)


class _HotPaths(Middleware):
    """DMs and `/weekly`, handled by a Bolt global middleware that runs after Bolt's own (the bot's own
    messages dropped, url_verification answered); anything else goes on to the listeners. Bolt dispatches
    to a listener by calling each listener's matcher before it and building all thirty-odd arguments a
    listener might ask for (kwargs injection) for each of them, which measured 70–100 µs a request against
    25 µs through here (issue 13: the ack path's CPU is the ack's latency under load)."""

    def __init__(self, *, on_command: Callable[[Ack, dict[str, Any]], None],
                 on_message: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
        self.on_command = on_command  # (ack, the command's fields), as a command listener is called
        self.on_message = on_message  # (the body, its event), as an event listener is called

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002 (Bolt's name)
        body = req.body
        if body.get("command") == COMMAND:
            ack = req.context.ack
            self.on_command(ack, body)
            return ack.response or BoltResponse(status=200, body="")
        event = body.get("event")
        if body.get("type") == "event_callback" and isinstance(event, dict) and event.get("type") == "message":
            try:
                self.on_message(body, event)
            except RetryLater:  # not stored (logged in one line): Slack delivers it again
                return BoltResponse(status=500, body="")
            return BoltResponse(status=200, body="")
        return next()


class _OneLineUnhandled(logging.Filter):
    """Bolt logs a request no listener matched with a code suggestion over many lines: one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Unhandled request"):
            record.msg, record.args = "Slack: a request no listener handles (answered 200, ignored)", ()
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class _NoClientTokenNotice(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN in the environment is unused when given a client: it is the client's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


_bolt_logger = logging.getLogger(__name__ + ".bolt")
_bolt_logger.addFilter(_NoClientTokenNotice())
_bolt_logger.addFilter(_OneLineUnhandled())
_bolt_logger.addFilter(QuietRetries())


def _bolt_app(client: WebClient, signing_secret: str | None) -> BoltApp:
    """Bolt without a signature check of its own (SlackEdge.endpoint checks every request's on the raw bytes
    before Bolt reads it; Socket Mode is authenticated by the app token), processing each request before
    answering it."""
    try:
        return BoltApp(
            logger=_bolt_logger,
            client=client,
            signing_secret=signing_secret or "",
            # the ack function (store the answer) runs before Slack's 200; lazy functions run after it
            process_before_response=True,
            request_verification_enabled=False,
            ignoring_self_events_enabled=True,
        )
    except BoltError as e:
        raise ConfigError(f"Slack: the bot token was refused ({e})") from None
    except (SlackClientError, OSError) as e:
        raise ConfigError(f"Slack: cannot reach the Web API at {client.base_url} ({describe(e)})") from None


def build_slack(app: Context, *, socket_mode: bool = False) -> SlackEdge:
    """The Slack edge from the settings; a UserError naming what is missing."""
    s = app.settings
    needed = {"SLACK_BOT_TOKEN": s.slack_bot_token}
    needed |= {"SLACK_APP_TOKEN": s.slack_app_token} if socket_mode else {"SLACK_SIGNING_SECRET": s.slack_signing_secret}
    missing = [name for name, value in needed.items() if not value]
    if missing:
        how = "Socket Mode" if socket_mode else "Slack over HTTP"
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(f"{how} needs {' and '.join(needed)}: {', '.join(missing)} {verb} not set")
    return SlackEdge(app, make_client(s), signing_secret=None if socket_mode else s.slack_signing_secret)


def run_socket_mode(edge: SlackEdge, app_token: str) -> None:
    """Serve the same Bolt app over Socket Mode until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    logger.info("Slack: connecting in Socket Mode")
    SocketModeHandler(edge.bolt, app_token).start()

