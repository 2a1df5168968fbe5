"""How the scheduler and lead commands reach people: one Sender per platform, chosen per member."""

from __future__ import annotations

from collections.abc import Sequence

from bot.platform import Platform, Reply

Sender = Platform  # what the scheduler and lead commands send through


class SendError(Exception):
    """A delivery failed; the message stays due and is retried."""


class RateLimited(SendError):
    """The platform said "too many": not sent, try again after `retry_after` seconds (its Retry-After)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def pick_sender(senders: Sequence[Sender], member: str) -> Sender | None:
    """The first configured platform that can reach the member."""
    return next((s for s in senders if s.can_reach(member)), None)


def deliver(senders: Sequence[Sender], member: str, reply: Reply, *, paced: bool = False) -> str:
    """Send on the first platform that takes it (an email Slack doesn't know may be Feishu's); returns its
    name, or raises SendError naming every platform's failure. `paced`: a platform that can (`try_send`)
    makes one attempt and raises RateLimited instead of waiting a rate limit out in this thread."""
    failures = []
    for sender in senders:
        if not sender.can_reach(member):
            continue
        try:
            send = getattr(sender, "try_send", None) if paced else None
            (send or sender.send)(member, reply)
            return sender.platform
        except RateLimited:
            raise  # the caller waits its Retry-After and tries this platform again
        except Exception as e:  # a platform's failure of any kind: the next one may reach the member
            failures.append(f"{sender.platform}: {e}")
    raise SendError("; ".join(failures) or f"no platform reaches {member}")
