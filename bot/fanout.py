"""Many sends in flight, paced per recipient: a rate limit on one waits out its Retry-After while the
others go on (the SDKs would sleep in the sending thread instead, stalling everyone queued behind it)."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.lanes import off_ack_path
from bot.notify import RateLimited

logger = logging.getLogger(__name__)
J = TypeVar("J")

SENDERS = 16  # sends in flight at once
MIN_GAP_S = 1.0  # between two messages to one recipient (Slack: about one message a second per channel)
MAX_LIMITED = 5  # a job rate limited this many times is handed back as limited (the next tick tries again)


@dataclass(order=True)
class _Queued(Generic[J]):
    ready: float
    seq: int
    job: J = field(compare=False)
    limited: int = field(default=0, compare=False)


def run_paced(jobs: Sequence[J], work: Callable[[J], None], *, channel: Callable[[J], Hashable],
              gave_up: Callable[[J, RateLimited], None], threads: int = SENDERS, min_gap: float = MIN_GAP_S,
              clock: Callable[[], float] = time.monotonic) -> None:
    """Run `work` on every job, `threads` at once. Two jobs for one `channel` run at least `min_gap` apart;
    a job whose work raises RateLimited runs again once its Retry-After has passed, and its channel waits
    as long (other channels do not). After MAX_LIMITED limits a job goes to `gave_up`. `work` handles its
    own other failures; whatever else it raises is logged and the job dropped."""
    heap: list[_Queued[J]] = [_Queued(0.0, i, job) for i, job in enumerate(jobs)]
    heapq.heapify(heap)
    seq = len(heap)
    next_free: dict[Hashable, float] = {}  # channel → when it may be sent to again
    busy: set[Hashable] = set()
    running = 0
    cond = threading.Condition()

    def take() -> _Queued[J] | None:
        """The next job whose channel is free, waiting for one; None when everything is done."""
        nonlocal running, seq
        with cond:
            while True:
                if not heap and running == 0:
                    cond.notify_all()
                    return None
                now = clock()
                if heap and heap[0].ready <= now:
                    item = heapq.heappop(heap)
                    ch = channel(item.job)
                    free = next_free.get(ch, 0.0)
                    if ch in busy or free > now:  # its channel is not free yet: back in line for then
                        seq += 1
                        item.ready, item.seq = max(free, now + 0.01), seq
                        heapq.heappush(heap, item)
                        continue
                    busy.add(ch)
                    running += 1
                    return item
                cond.wait(timeout=max(0.005, heap[0].ready - now) if heap else None)

    def done(item: _Queued[J], limited: RateLimited | None) -> None:
        nonlocal running, seq
        ch = channel(item.job)
        with cond:
            running -= 1
            busy.discard(ch)
            now = clock()
            wait = max(min_gap, limited.retry_after if limited else 0.0)
            next_free[ch] = max(next_free.get(ch, 0.0), now + wait)
            if limited is not None and item.limited + 1 < MAX_LIMITED:
                seq += 1
                heapq.heappush(heap, _Queued(now + limited.retry_after, seq, item.job, item.limited + 1))
            cond.notify_all()

    def worker() -> None:
        while (item := take()) is not None:
            limited: RateLimited | None = None
            try:
                work(item.job)
            except RateLimited as e:
                limited = e
                if item.limited + 1 >= MAX_LIMITED:
                    _safely(gave_up, item.job, e)
            except Exception as e:  # work reports its own failures; this only keeps the pool alive
                logger.error("a paced send failed unexpectedly: %s: %s", type(e).__name__, e)
            done(item, limited)

    # off the ack path: each send's transactions take turns (bot.lanes)
    senders = max(1, min(threads, len(jobs)))
    pool = [threading.Thread(target=off_ack_path(worker), name=f"fanout-{i}", daemon=True) for i in range(senders)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _safely(fn: Callable[[J, RateLimited], None], job: J, e: RateLimited) -> None:
    try:
        fn(job, e)
    except Exception as e:
        logger.error("handing back a rate-limited send failed: %s: %s", type(e).__name__, e)
