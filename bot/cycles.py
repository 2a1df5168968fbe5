"""A team's report cycles: labels, openings, deadlines and reminders, shifted around holidays.

Pure functions of the schedule and a time zone: no SDK, no database, no clock. A cycle is `weeks`
ISO weeks; it is labelled by its first and last week (`2024-W40`, `2024-W38&W39`,
`2024-W52&2025-W01`, `2024-W38&W40` for three weeks). It opens at `schedule.open` in its last week
and takes answers until the next cycle opens; its deadline is `schedule.deadline` in that week, or
the following one when that weekday and time are not after the opening.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Schedule, Team, TeamFile, parse_week_label
from bot.errors import UserError
from bot.holidays import Calendar
from bot.model import CycleTimes

_EPOCH = date(1, 1, 1)  # a Monday, the start of ISO week 0001-W01: indexes cycles without `start`
MIN_YEAR, MAX_YEAR = 1990, 2200  # time zones and calendars past these are guesswork
_LABEL = re.compile(r"^(\d{4})-W(\d{2})(?:&(?:(\d{4})-)?W(\d{2}))?$")


def week_label(d: date) -> str:
    """The ISO week holding `d`, like `2024-W40`."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def cycle_label(first_monday: date, weeks: int) -> str:
    """The label of the cycle of `weeks` weeks starting on `first_monday`: first&last week."""
    first = week_label(first_monday)
    if weeks == 1:
        return first
    last = week_label(first_monday + timedelta(weeks=weeks - 1))
    # The year is repeated only when the cycle crosses into the next ISO year.
    return f"{first}&{last[5:] if last[:4] == first[:4] else last}"


class CycleCalendar:
    """The cycles of one schedule in one time zone.

    `index` 0 is the cycle of `schedule.start`; without a start (weekly cycles only) every ISO week
    is a cycle and its index counts weeks from 0001-W01.
    """

    def __init__(self, schedule: Schedule, tz: ZoneInfo, calendar: Calendar | None = None) -> None:
        if schedule.weeks > 1 and not schedule.start:
            raise ValueError("a schedule of several weeks needs a start")
        self.schedule = schedule
        self.tz = tz
        self.calendar = calendar or Calendar.from_schedule(schedule)
        if schedule.start:
            year, week = parse_week_label(schedule.start)
            self._base = date.fromisocalendar(year, week, 1)
            self._first: int | None = 0
        else:
            self._base, self._first = _EPOCH, None
        self._span = 7 * schedule.weeks  # days per cycle
        op, dl = schedule.open, schedule.deadline
        self._deadline_days = dl.weekday + (7 if (dl.weekday, dl.at) <= (op.weekday, op.at) else 0)

    @classmethod
    def for_team(cls, team_file: TeamFile, team: Team) -> CycleCalendar:
        """The cycles of `team`, in its time zone."""
        return cls(team.schedule, team_file.tz(team))

    # -- indexes ---------------------------------------------------------------------------------

    def first_monday(self, index: int) -> date:
        """The Monday the cycle `index` starts on."""
        return self._base + timedelta(days=self._span * index)

    def label(self, index: int) -> str:
        """The label of cycle `index`."""
        return cycle_label(self.first_monday(index), self.schedule.weeks)

    def _index_of(self, d: date) -> int:
        """The index of the cycle whose weeks hold `d` (possibly before the first cycle)."""
        return (d - self._base).days // self._span

    def _exists(self, index: int) -> bool:
        return self._first is None or index >= self._first

    def is_skipped(self, index: int) -> bool:
        """True when the cycle's weeks hold no workday at all."""
        first = self.first_monday(index)
        return not any(self.calendar.is_workday(first + timedelta(days=i)) for i in range(self._span))

    # -- instants --------------------------------------------------------------------------------

    def _local(self, d: date, at: time) -> datetime:
        # The UTC round trip turns a wall time in a DST gap into one that exists.
        return datetime.combine(d, at, tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    def _next_workday(self, d: date) -> date:
        while not self.calendar.is_workday(d):
            d += timedelta(days=1)
        return d

    def _workday_before(self, d: date, floor: date) -> date | None:
        """`d` or the last workday before it, not earlier than `floor` (None when there is none)."""
        while d >= floor:
            if self.calendar.is_workday(d):
                return d
            d -= timedelta(days=1)
        return None

    def opens_at(self, index: int) -> datetime:
        """The (holiday-adjusted) opening of cycle `index`: a non-workday moves to the next workday."""
        last_monday = self.first_monday(index) + timedelta(weeks=self.schedule.weeks - 1)
        nominal = last_monday + timedelta(days=self.schedule.open.weekday)
        return self._local(self._next_workday(nominal), self.schedule.open.at)

    def _deadline(self, index: int, opens: datetime) -> datetime:
        last_monday = self.first_monday(index) + timedelta(weeks=self.schedule.weeks - 1)
        at = self.schedule.deadline.at
        day = self._workday_before(last_monday + timedelta(days=self._deadline_days), opens.date())
        if day is not None and _utc(self._local(day, at)) > _utc(opens):
            return self._local(day, at)
        # Moving back crossed the opening: the first workday from the opening day that is after it.
        day = self._next_workday(opens.date())
        while _utc(self._local(day, at)) <= _utc(opens):
            day = self._next_workday(day + timedelta(days=1))
        return self._local(day, at)

    def _reminder(self, deadline: datetime, offset: timedelta, opens: datetime) -> datetime:
        # Subtract in UTC: "24h before" is 24 real hours, also across a DST change.
        raw = (_utc(deadline) - offset).astimezone(self.tz)
        day = self._workday_before(raw.date(), opens.date())
        if day is None:
            return opens
        at = self._local(day, raw.time()) if day != raw.date() else raw
        return at if _utc(at) >= _utc(opens) else opens

    def _times(self, index: int) -> CycleTimes:
        opens = self.opens_at(index)
        deadline = self._deadline(index, opens)
        reminders = tuple(
            (text, self._reminder(deadline, offset, opens))
            for text, offset in self.schedule.reminder_offsets()
        )
        nxt = index + 1
        while self.is_skipped(nxt):
            nxt += 1
        return CycleTimes(
            label=self.label(index),
            index=index,
            opens_at=opens,
            deadline=deadline,
            reminders=reminders,
            next_opens_at=self.opens_at(nxt),
        )

    # -- queries ---------------------------------------------------------------------------------

    def at_index(self, index: int) -> CycleTimes | None:
        """Cycle `index`, or None when it is before the first cycle or skipped."""
        if not self._exists(index) or self.is_skipped(index):
            return None
        return self._times(index)

    def cycle_at(self, instant: datetime) -> CycleTimes | None:
        """The newest cycle open at `instant` (None before the first cycle opens)."""
        index = self._newest_opened(instant)
        return None if index is None else self._times(index)

    def _newest_opened(self, instant: datetime) -> int | None:
        moment = _utc(_aware(instant))
        # Later cycles open in weeks after `instant`; earlier ones are visited only while the
        # nearer ones are skipped or had their opening pushed past `instant` by holidays.
        index = self._index_of(moment.astimezone(self.tz).date())
        while self._exists(index):
            if not self.is_skipped(index) and _utc(self.opens_at(index)) <= moment:
                return index
            index -= 1
        return None

    def cycles_between(self, start: datetime, end: datetime) -> list[CycleTimes]:
        """The cycles whose opening lies in [start, end), oldest first."""
        lo, hi = _utc(_aware(start)), _utc(_aware(end))
        newest = self._newest_opened(start)
        index = newest if newest is not None else self._first
        if index is None:  # weekly cycles without a start: begin with the week of `start`
            index = self._index_of(lo.astimezone(self.tz).date())
        out: list[CycleTimes] = []
        end_day = hi.astimezone(self.tz).date()
        # An opening never comes before its cycle's first Monday, so stop once that is past `end`.
        while self.first_monday(index) <= end_day:
            if not self.is_skipped(index):
                opens = _utc(self.opens_at(index))
                if opens >= hi:
                    break
                if opens >= lo:
                    out.append(self._times(index))
            index += 1
        return out

    def by_label(self, label: str) -> CycleTimes:
        """The cycle called `label`; a UserError says why when there is none."""
        text = label.strip().upper()
        m = _LABEL.fullmatch(text)
        if not m:
            example = self.label(0) if self._first is not None else "2024-W40"
            raise UserError(f"{label!r} is not a cycle label: expected one like {example}")
        try:
            year, week = parse_week_label(f"{m.group(1)}-W{m.group(2)}")
            last = (year, week)
            if m.group(4):
                last = parse_week_label(f"{m.group(3) or m.group(1)}-W{m.group(4)}")
        except ValueError as e:
            raise UserError(f"{label!r} is not a cycle label: {e}") from None
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise UserError(f"{text}: a cycle must lie between {MIN_YEAR} and {MAX_YEAR}")
        first = date.fromisocalendar(year, week, 1)
        index = self._index_of(first)
        if not self._exists(index):
            raise UserError(f"{text} is before this team's first cycle, {self.label(0)}")
        last_monday = self.first_monday(index) + timedelta(weeks=self.schedule.weeks - 1)
        if self.first_monday(index) != first or last_monday != date.fromisocalendar(*last, 1):
            kind = (
                "weekly cycles"
                if self.schedule.weeks == 1
                else f"{self.schedule.weeks}-week cycles from {self.schedule.start}"
            )
            raise UserError(
                f"{text} is not a cycle of this team ({kind}); "
                f"{week_label(first)} is in cycle {self.label(index)}"
            )
        if self.is_skipped(index):
            raise UserError(f"{text} is skipped: it has no workday (holidays), so no report is due")
        return self._times(index)


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {dt!r}")
    return dt


def _utc(dt: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall time; UTC compares real instants.
    return dt.astimezone(UTC)
