"""How the scheduler and lead commands reach people: one Sender per platform, chosen per member."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat import Reply
from bot.platform import Platform

Sender = Platform  # what the scheduler and lead commands send through


class SendError(Exception):
    """A delivery failed; the message stays due and is retried."""


def pick_sender(senders: Sequence[Sender], member: str) -> Sender | None:
    """The first configured platform that can reach the member."""
    return next((s for s in senders if s.can_reach(member)), None)


def deliver(senders: Sequence[Sender], member: str, reply: Reply) -> str:
    """Send on the first platform that takes it (an email Slack doesn't know may be Feishu's); returns its
    name, or raises SendError naming every platform's failure."""
    failures = []
    for sender in senders:
        if not sender.can_reach(member):
            continue
        try:
            sender.send(member, reply)
            return sender.platform
        except Exception as e:  # a platform's failure of any kind: the next one may reach the member
            failures.append(f"{sender.platform}: {e}")
    raise SendError("; ".join(failures) or f"no platform reaches {member}")
