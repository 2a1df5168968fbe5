"""The terminal as a chat platform: the same ChatBot the Slack and Feishu edges drive, no tokens.

Buttons show as numbered choices (type the number; like a message's buttons on Slack, they stay until
the bot shows new ones); a form (the lead's Edit) is printed prefilled and filled in on the lines that
follow, up to a line with only `.`; `/as KEY` changes who is speaking, `/edit N text` and `/delete N`
edit or delete your N-th message, as Slack and Feishu would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TextIO

from bot.chat import Button, ChatBot, Outcome, Reply, command_text, two_parts
from bot.i18n import t
from bot.platform import EventKind, Form, Incoming


class ConsoleChat:
    """A line-based chat with the bot; prints what the bot says, as the platforms would show it."""

    platform = "console"

    def __init__(self, bot: ChatBot, out: TextIO, member: str) -> None:
        self.bot = bot
        self.out = out
        self.member = member
        self._counter = 0
        self._session = uuid.uuid4().hex[:12]  # message ids stay unique across chat sessions on one database
        self._buttons: list[Button] = []
        self._form: tuple[Form, str, list[str]] | None = None  # the open form, whose it is, the lines typed
        self._mine: dict[str, list[str]] = {}
        if not list(bot.platforms()):  # published reports are printed here too
            bot.platforms = lambda: (ConsoleSender(self),)

    def name(self, member: str) -> str:
        m = self.bot.service.team_file.members.get(member)
        return m.name if m else member

    def show(self, replies: Iterable[Reply], *, to: str | None = None, dm: bool = False) -> None:
        """Print replies; buttons become numbered choices for the next line typed."""
        for r in replies:
            target = r.to or to or self.member
            if r.channel:
                head = f"bot → #{r.channel}"
            elif target != self.member or dm:
                head = f"bot → {self.name(target)} (DM)"
            else:
                head = f"bot → {self.name(target)}"
            body = r.text.rstrip("\n").replace("\n", "\n    ")
            self.out.write(f"  {head}: {body}\n")
            if r.file:
                lines = r.file[1].count("\n")
                self.out.write(f"    [file: {r.file[0]}, {lines} lines]\n")
            if r.buttons:
                self._buttons = list(r.buttons)
                choices = "  ".join(f"[{i}] {b.label}" for i, b in enumerate(r.buttons, 1))
                self.out.write(f"    {choices}\n")
            if r.form and target == self.member:
                self._open(r.form)
        self.out.flush()

    def _open(self, form: Form) -> None:
        """A form as the text to type: each field under its heading, prefilled; the lines that follow fill it."""
        self._form = (form, self.member, [])
        self.out.write(f"    {t(self.bot.lang(self.member), 'form_console')}\n")
        for i, f in enumerate(form.fields):
            if i:
                self.out.write("\n")
            self.out.write(f"    {'##' if i == 0 else '#'} {f.label}\n")
            self.out.writelines(f"    {line}\n" for line in f.initial.splitlines() if line.strip())

    def _fill(self, line: str) -> None:
        """A line typed into the open form: `.` submits it, `/cancel` drops it, a command closes it and runs,
        anything else is its text."""
        assert self._form is not None
        form, member, lines = self._form
        if line.strip() == "/cancel":
            self._form = None
            self.out.write("  (the form was closed; nothing was saved)\n")
        elif command_text(line) is not None:
            self._form = None
            self.handle(line)
        elif line.strip() == ".":
            self._form = None
            first, second = two_parts("\n".join(lines))
            names = [f.name for f in form.fields]
            self._run(self.bot.handle(Incoming(self.platform, member, "form", action=form.action, value=form.value,
                                               fields=tuple(zip(names, (first, second), strict=False)))))
        else:
            lines.append(line)

    def finish(self) -> None:
        """The input ended: say so if a form was left unsaved."""
        if self._form is not None:
            self._form = None
            self.out.write("  (the form was not saved: end it with a line holding only '.')\n")
            self.out.flush()

    def say(self, text: str) -> None:
        """One line (or block) typed by the current member."""
        body = text.rstrip("\n").replace("\n", "\n    ")
        self.out.write(f"{self.name(self.member)} > {body}\n")
        self.handle(text)

    def handle(self, text: str) -> None:
        if self._form is not None:
            self._fill(text)
            return
        stripped = text.strip()
        if stripped.isdigit() and self._buttons and 1 <= int(stripped) <= len(self._buttons):
            button = self._buttons[int(stripped) - 1]
            self._run(self.bot.handle(Incoming(self.platform, self.member, "action", action=button.action,
                                               value=button.value)))
            return
        if stripped.startswith("/as "):
            key = stripped[4:].strip()
            if key in self.bot.service.team_file.members:
                self.member = key
                self._buttons = []  # what the last person was shown is not theirs to press
                self.out.write(f"  (now speaking as {self.name(key)})\n")
            else:
                self.out.write(f"  (no member {key!r}; members: {', '.join(self.bot.service.team_file.members)})\n")
            return
        if stripped.startswith("/edit ") or stripped.startswith("/delete "):
            self._edit(stripped)
            return
        if command_text(text) is not None:  # the same rule as every platform: commands are never stored
            self._run(self.bot.handle(Incoming(self.platform, self.member, "command", command_text(text) or "")))
            return
        self._counter += 1
        message_id = f"console-{self._session}-{self._counter}"
        self._mine.setdefault(self.member, []).append(message_id)
        self._run(self.bot.handle(Incoming(self.platform, self.member, "message", text, message_id=message_id)))

    def _run(self, outcome: Outcome) -> None:
        self.show(outcome.replies)
        if outcome.later:
            self.show(outcome.later())

    def _edit(self, line: str) -> None:
        cmd, _, rest = line.partition(" ")
        number, _, text = rest.strip().partition(" ")
        mine = self._mine.get(self.member, [])
        if not number.isdigit() or not 1 <= int(number) <= len(mine):
            if mine:
                self.out.write(f"  (you have sent {len(mine)} message(s): {cmd} N, N from 1 to {len(mine)})\n")
            else:
                self.out.write(f"  (you have sent no message to {cmd[1:]} yet)\n")
            return
        message_id = mine[int(number) - 1]
        kind: EventKind = "edit" if cmd == "/edit" else "delete"
        self._run(self.bot.handle(Incoming(self.platform, self.member, kind, text, message_id=message_id)))


class ConsoleSender:
    """bot.platform.Platform for the console: the scheduler's DMs and published reports, printed.
    Every member can be reached on it."""

    platform = "console"
    in_flight = 1  # one terminal: prompts print whole, in the order the tick lists them

    def __init__(self, chat: ConsoleChat) -> None:
        self.chat = chat

    def can_reach(self, member: str) -> bool:
        return True

    def send(self, member: str, reply: Reply) -> None:
        self.chat.show([reply], to=member, dm=True)

    def publish(self, channel: str, reply: Reply) -> None:
        self.chat.show([Reply(reply.text, reply.buttons, reply.file, channel=channel)])
