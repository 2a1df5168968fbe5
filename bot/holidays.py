"""Which days are workdays: Chinese public holidays and adjusted workdays (调休), or none at all."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import date
from typing import Literal

from bot.config import Schedule

try:
    import chinese_calendar as _cn
except ImportError:  # a broken install must not stop the bot: fall back to weekends
    _cn = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

HolidayMode = Literal["CN", "none"]

_warned_years: set[int] = set()  # one warning per year per process, however often it is asked
_warned_lock = threading.Lock()


def _coverage() -> str:
    """The years chinesecalendar has data for, as words for the warning."""
    try:
        years = [d.year for d in _cn.constants.holidays]  # type: ignore[union-attr]
        return f"chinesecalendar covers {min(years)} to {max(years)}"
    except Exception:  # only decorates a warning; never worth failing for
        return "chinesecalendar is not installed" if _cn is None else "chinesecalendar has no data for it"


def _warn_once(year: int) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    logger.warning(
        "Chinese holiday data for %d is not available (%s): using weekends only; "
        "list days off under schedule.extra_holidays / extra_workdays",
        year,
        _coverage(),
    )


class Calendar:
    """Answers `is_workday` for one team; the team file's extra days override the package."""

    def __init__(
        self,
        mode: HolidayMode = "none",
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> None:
        if mode not in ("CN", "none"):
            raise ValueError(f"unknown holiday mode {mode!r} (expected 'CN' or 'none')")
        self.mode: HolidayMode = mode
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self._cache: dict[date, bool] = {}

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> Calendar:
        """The calendar a team's `schedule` asks for."""
        return cls(schedule.holidays, schedule.extra_holidays, schedule.extra_workdays)

    def is_workday(self, d: date) -> bool:
        """True when people work on `d`; with mode "none" every day is."""
        if self.mode == "none":
            return True
        known = self._cache.get(d)
        if known is None:
            known = self._cache[d] = self._cn_workday(d)
        return known

    def _cn_workday(self, d: date) -> bool:
        # A day listed in both lists is a day off: nagging people on a holiday is the worse mistake.
        if d in self.extra_holidays:
            return False
        if d in self.extra_workdays:
            return True
        if _cn is not None:
            try:
                return bool(_cn.is_workday(d))
            except NotImplementedError:
                pass
        _warn_once(d.year)
        return d.weekday() < 5
