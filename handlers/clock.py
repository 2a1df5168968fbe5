"""The clock: APScheduler calling `tick` every minute. The schedule itself is derived from the
team file and the database on every tick, never pickled into a job store (APScheduler's FAQ:
job stores must not be shared between schedulers), so any number of clocks can run at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.errors import report_error
from bot.lanes import off_ack_path
from bot.notify import Sender
from bot.platform import Context
from bot.tick import tick

logger = logging.getLogger(__name__)


@off_ack_path  # the tick's transactions take turns: a tick in `serve` never holds up an ack (bot.lanes)
def _run_tick(app: Context, senders: Sequence[Sender]) -> None:
    try:
        sent = tick(app.service, senders)
    except Exception as e:  # the database is down, say: one line now, and the next minute tries again
        report_error("the tick", e, logger)
        return
    for s in sent:
        logger.info("%s %s to %s via %s: %s", s.due.kind, s.due.cycle, s.due.member, s.platform,
                    "sent" if s.ok else f"failed ({s.error})")


def _on_error(event: JobExecutionEvent) -> None:
    logger.error("tick failed: %s", event.exception)


def configure(scheduler: BaseScheduler, app: Context, senders: Sequence[Sender]) -> None:
    scheduler.add_job(
        _run_tick, CronTrigger(second=0), args=(app, list(senders)), id="tick", name="weekly-bot tick",
        # a tick missed by up to an hour (sleep, restart) still runs, once
        misfire_grace_time=3600, coalesce=True, max_instances=1, replace_existing=True,
    )
    scheduler.add_listener(_on_error, EVENT_JOB_ERROR)


def start_background_clock(app: Context, senders: Sequence[Sender]) -> Callable[[], None]:
    """Start ticking in a thread (for `serve` and `socket`); returns a function that stops it."""
    scheduler = BackgroundScheduler(timezone="UTC")
    configure(scheduler, app, senders)
    scheduler.start()
    logger.info("scheduler started: a tick every minute")
    return lambda: scheduler.shutdown(wait=False)


def run_clock(app: Context, senders: Sequence[Sender]) -> None:
    """Tick every minute in the foreground until interrupted (`weekly-bot clock`)."""
    scheduler = BlockingScheduler(timezone="UTC")
    configure(scheduler, app, senders)
    _run_tick(app, senders)  # catch up at once after a restart
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
