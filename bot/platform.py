"""The contract between the core and a chat platform (Slack, Feishu, the console, the next one).

An edge turns what its platform delivers into one `Incoming` event and hands it to
`ChatBot.handle`; the core answers with `Reply`s, which the edge renders for its platform. The
scheduler and publishing reach people through `Platform.send` / `Platform.post`. A platform is
registered once (`handlers/registry.py`): its plugin says whether its credentials are set and
builds its sender, its HTTP routes and its long-lived connection from a `Context`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from bot.config import Settings, TeamFile
    from bot.service import WeeklyService

EventKind = Literal["message", "edit", "delete", "command", "action", "form"]


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # "assign" | "publish"
    value: str


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    initial: str = ""


@dataclass(frozen=True)
class Form:
    """A form to fill in (a Slack modal, a Feishu card form, the console's `/weekly edit`): its submission
    comes back as an Incoming of kind "form" with `action`, `value` and the fields by name."""

    title: str
    action: str
    value: str
    fields: tuple[FormField, ...]
    submit: str


@dataclass(frozen=True)
class Reply:
    """Something the bot says: to the sender (to=None), to a member by key, or to a channel."""

    text: str
    buttons: tuple[Button, ...] = ()
    file: tuple[str, str] | None = None  # (file name, content)
    to: str | None = None
    channel: str | None = None
    key: str | None = None  # the outgoing message's exactly-once key, for platforms that dedupe sends
    form: Form | None = None  # a form to open for whoever pressed or typed (the text says what it is)


@dataclass
class Outcome:
    """What to say at once (the ack) and, optionally, slow work whose replies come afterwards."""

    replies: list[Reply] = field(default_factory=list)
    later: Callable[[], list[Reply]] | None = None


@dataclass(frozen=True)
class Incoming:
    """One thing a person did on a platform, as the core sees it.

    `message`, `edit`, `delete`: a DM to the bot (`message_id` is the platform's id for it);
    `command`: `/weekly <text>`; `action`: a button (`action`, `value`); `form`: a submitted form
    (`action` names it, `fields` its inputs). `event_id` is the platform's delivery id, for dedupe.
    """

    platform: str
    user_id: str
    kind: EventKind
    text: str = ""
    message_id: str | None = None
    event_id: str | None = None
    action: str = ""
    value: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    ts: float | None = None  # the platform's time of the change (Slack's ts), to apply changes in their order


def chunks(text: str, size: int) -> list[str]:
    """Cut text into pieces of at most `size` characters (a platform's message limit), at line ends where possible."""
    out: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > 0 else size
        out.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return out + [text.rstrip("\n")] if text.strip() else out


class Context(Protocol):
    """What the composition root hands a platform: the settings, the team file and the use-cases."""

    @property
    def settings(self) -> Settings: ...
    @property
    def team_file(self) -> TeamFile: ...
    @property
    def service(self) -> WeeklyService: ...


class Platform(Protocol):
    """How the core reaches people on one platform. One may set `in_flight`, the sends it takes at once
    in a fan-out (default bot.fanout.SENDERS)."""

    platform: str  # its registry name: "slack", "feishu"; also the team file's key for a member's id

    def can_reach(self, member: str) -> bool:
        """True when this platform knows the member (an id, or an email it can resolve)."""
        ...

    def send(self, member: str, reply: Reply) -> None:
        """DM the member, or raise: a raise means 'not sent', and the caller tries again later."""
        ...

    def publish(self, channel: str, reply: Reply) -> None:
        """Post to a channel or group chat (a published report), or raise."""
        ...


class WebEdge(Protocol):
    """A platform served over HTTP: its routes (framework objects the web app mounts) and its sender."""

    platform: str

    @property
    def sender(self) -> Platform: ...

    def routes(self) -> Sequence[object]: ...

    def finish(self, timeout: float) -> None:
        """The server is stopping: finish the work its acks left (up to `timeout` seconds)."""
        ...


class Connection(NamedTuple):
    """A long-lived connection `socket` runs: its sender, a function that runs it until interrupted, and one
    that finishes the work its acks left (up to the seconds given) before the process stops."""

    sender: Platform
    run: Callable[[], None]
    finish: Callable[[float], None]


class PlatformPlugin(Protocol):
    """A platform as the registry knows it: whether it is configured, and how to build its parts."""

    name: str

    def configured(self, settings: Settings) -> bool:
        """True when any of its credentials is set (then a missing one is an error, not 'off')."""
        ...

    def sender(self, ctx: Context) -> Platform | None:
        """What the scheduler sends through; None when the credentials do not allow sending."""
        ...

    def web_edge(self, ctx: Context) -> WebEdge | None:
        """Its HTTP routes for `serve`; None when it has none configured."""
        ...

    def connection(self, ctx: Context) -> Connection | None:
        """A long-lived connection for `socket` (Slack Socket Mode, Feishu's long connection); None when not
        configured."""
        ...

    def check(self, settings: Settings) -> list[tuple[bool, str]]:
        """`weekly-bot check`: (ok, line) about its credentials."""
        ...
