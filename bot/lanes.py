"""Which of a process's threads are on an ack path, for the database pool's sake.

A platform waits 3 s for its ack, so a thread answering one must never wait for a pooled database
connection. Those threads — the request workers, each edge's group-commit thread, /healthz's, a socket
SDK's — are few and counted (storage.db.POOL_SIZE has room for them all). Every other thread that may
touch the database (work after acks, the fan-out's senders, the scheduler's tick, the web view's pages)
runs that work in `background()`: storage then gives each of its transactions one of a fixed number of
turns first (storage.db.POOL_OVERFLOW), so background work, however much of it there is, waits for a
turn among itself and never takes the connections the ack path needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

_lane = threading.local()
P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def background() -> Iterator[None]:
    """This thread's work in the block is off the ack path: its transactions take turns."""
    was = getattr(_lane, "background", False)
    _lane.background = True
    try:
        yield
    finally:
        _lane.background = was


def in_background() -> bool:
    """True inside `background()` on this thread."""
    return bool(getattr(_lane, "background", False))


def off_ack_path(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, run in `background()` (for a thread's entry point, a job, a page)."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with background():
            return fn(*args, **kwargs)

    return run
