"""The APScheduler clock: one in-memory job calling tick every minute, coalesced, with a long misfire grace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bot.tick import EVENT_MEMORY
from bot.wiring import App
from handlers.clock import _run_tick, configure

from .conftest import FixedClock, at
from .test_tick import OWNERS, W42_OPEN, Inbox


def test_the_clock_ticks_every_minute_from_memory_only(make_app: Callable[..., App]) -> None:
    app = make_app()
    scheduler = BackgroundScheduler(timezone="UTC")
    configure(scheduler, app, [Inbox()])
    scheduler.start(paused=True)
    try:
        (job,) = scheduler.get_jobs()
        assert (job.id, job.coalesce, job.max_instances, job.misfire_grace_time) == ("tick", True, 1, 3600)
        assert job.func is _run_tick
        first = job.trigger.get_next_fire_time(None, datetime(2024, 10, 14, 2, 0, 30, tzinfo=UTC))
        assert first == datetime(2024, 10, 14, 2, 1, tzinfo=UTC)
        assert isinstance(scheduler._lookup_jobstore("default"), MemoryJobStore)
    finally:
        scheduler.shutdown(wait=False)


def test_a_clock_tick_sends_what_is_due(make_app: Callable[..., App]) -> None:
    app = make_app(FixedClock(W42_OPEN))
    inbox = Inbox()
    _run_tick(app, [inbox])
    _run_tick(app, [inbox])
    assert sorted(m for m, _ in inbox.sent) == sorted(OWNERS)


def test_old_processed_events_are_forgotten_by_the_tick(make_app: Callable[..., App]) -> None:
    clock = FixedClock(at("2024-10-15 11:00"))
    app = make_app(clock)
    assert app.store.claim_event(platform="slack", event_id="Ev1", at=clock.now)
    clock.now = clock.now + EVENT_MEMORY
    _run_tick(app, [Inbox()])
    assert app.store.claim_event(platform="slack", event_id="Ev1", at=clock.now) is False  # exactly 7 days: kept
    clock.now = clock.now + EVENT_MEMORY
    _run_tick(app, [Inbox()])
    assert app.store.claim_event(platform="slack", event_id="Ev1", at=clock.now) is True
