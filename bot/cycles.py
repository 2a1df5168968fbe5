"""A team's report cycles: the schedule's plan, the stored records, and the timeline they make.

Pure functions of the schedule, a time zone and the stored cycles: no SDK, no database, no clock.

- `CyclePlan` cuts weeks into cycles as the schedule says: every `weeks` ISO weeks from `start`, or
  weekly with short weeks merged (`merge_short_weeks`: walking forward, a week with at most N
  workdays after holidays and 调休 is merged with the week after it) and cycles merged by hand
  (`merge`). A cycle opens at `schedule.open` in its last week and its deadline is
  `schedule.deadline` in that week (the following one when that is not after the opening), both
  moved around holidays.
- `Timeline` lays the stored cycles (opened or imported: the truth, whatever the schedule says
  now) over the plan, which only predicts the weeks no stored cycle holds. Cycles are ordered by
  their weeks, never by their labels.

Labels name a cycle's first and last week: `2024-W40`, `2024-W38&W39`, `2024-W52&2025-W01`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.config import MAX_CYCLE_WEEKS, Schedule, Team, TeamFile, parse_cycle_label, parse_week_label
from bot.errors import UserError
from bot.holidays import Calendar
from bot.model import Cycle

MIN_YEAR, MAX_YEAR = 1990, 2200  # time zones and calendars past these are guesswork
WEEK = timedelta(weeks=1)
_LOOKBACK = 12  # weeks searched back for the newest opened cycle before looking further
_MAX_CHAIN = 104  # weeks walked back to find where a run of merged weeks begins
_LABEL = re.compile(r"^(\d{4})-W(\d{2})(?:&(?:(\d{4})-)?W(\d{2}))?$")


def week_label(d: date) -> str:
    """The ISO week holding `d`, like `2024-W40`."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(d: date) -> date:
    return d - timedelta(days=d.weekday())


def cycle_label(first_monday: date, weeks: int) -> str:
    """The label of the cycle of `weeks` weeks starting on `first_monday`: first&last week."""
    first = week_label(first_monday)
    if weeks == 1:
        return first
    last = week_label(first_monday + timedelta(weeks=weeks - 1))
    # The year is repeated only when the cycle crosses into the next ISO year.
    return f"{first}&{last[5:] if last[:4] == first[:4] else last}"


@dataclass(frozen=True, order=True)
class Span:
    """Consecutive ISO weeks: the Monday of the first and how many."""

    first: date
    weeks: int

    @property
    def last(self) -> date:
        """The Monday of the last week."""
        return self.first + timedelta(weeks=self.weeks - 1)

    @property
    def end(self) -> date:
        """The Monday after the last week."""
        return self.first + timedelta(weeks=self.weeks)

    @property
    def label(self) -> str:
        return cycle_label(self.first, self.weeks)

    def mondays(self) -> list[date]:
        return [self.first + timedelta(weeks=i) for i in range(self.weeks)]

    def overlaps(self, other: Span) -> bool:
        return self.first < other.end and other.first < self.end

    def holds(self, monday: date) -> bool:
        return self.first <= monday < self.end


def parse_span(label: str) -> Span:
    """The weeks a label names; a UserError says why a label is not one."""
    text = str(label).strip().upper()
    m = _LABEL.fullmatch(text)
    if not m:
        raise UserError("label_malformed", label=label)
    weeks = [(int(m.group(1)), int(m.group(2)))]
    if m.group(4):
        weeks.append((int(m.group(3) or m.group(1)), int(m.group(4))))
    for year, week in weeks:
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise UserError("label_year", label=text, lo=MIN_YEAR, hi=MAX_YEAR)
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise UserError("label_no_week", label=label, year=year, week=week) from None
    try:
        first, n = parse_cycle_label(text)
    except ValueError:
        last = date.fromisocalendar(*weeks[-1], 1)
        first = date.fromisocalendar(*weeks[0], 1)
        if last <= first:
            raise UserError("label_order", label=label) from None
        raise UserError("label_too_long", label=label, n=MAX_CYCLE_WEEKS) from None
    return Span(first, n)


class CycleRecord(Protocol):
    """A stored cycle as the timeline needs it (storage's StoredCycle is one)."""

    @property
    def id(self) -> int: ...
    @property
    def label(self) -> str: ...
    @property
    def opens_at(self) -> datetime | None: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def imported(self) -> bool: ...


class CyclePlan:
    """How the schedule cuts weeks into cycles, and each cycle's holiday-adjusted instants."""

    def __init__(self, schedule: Schedule, tz: ZoneInfo, calendar: Calendar | None = None) -> None:
        if schedule.weeks > 1 and not schedule.start:
            raise ValueError("a schedule of several weeks needs a start")
        self.schedule = schedule
        self.tz = tz
        self.calendar = calendar or Calendar.from_schedule(schedule)
        self.start: date | None = None
        if schedule.start:
            year, week = parse_week_label(schedule.start)
            self.start = date.fromisocalendar(year, week, 1)
        self._hand = {first: weeks for first, weeks in schedule.merged_spans()}
        self._hand_weeks = {m: first for first, n in self._hand.items() for m in Span(first, n).mondays()}
        op, dl = schedule.open, schedule.deadline
        self._deadline_days = dl.weekday + (7 if (dl.weekday, dl.at) <= (op.weekday, op.at) else 0)

    @classmethod
    def for_team(cls, team_file: TeamFile, team: Team) -> CyclePlan:
        """The plan of `team`, in its time zone."""
        return cls(team.schedule, team_file.tz(team))

    def not_a_cycle(self, label: str, week: str, holder: str) -> UserError:
        """The error for a label the plan does not cut, naming the cycle holding its week."""
        s = self.schedule
        if s.weeks > 1:
            return UserError("label_not_cycle_n", label=label, n=s.weeks, start=s.start, week=week, holder=holder)
        kind = "label_not_cycle_merged" if s.merge_short_weeks or s.merge else "label_not_cycle_weekly"
        return UserError(kind, label=label, week=week, holder=holder)

    # -- how weeks are cut -----------------------------------------------------------------
    def workdays(self, monday: date) -> int:
        return sum(self.calendar.is_workday(monday + timedelta(days=i)) for i in range(7))

    def is_skipped(self, span: Span) -> bool:
        """True when the span holds no workday at all (no report is due for it)."""
        return not any(self.calendar.is_workday(span.first + timedelta(days=i)) for i in range(7 * span.weeks))

    def _short(self, monday: date) -> bool:
        n = self.schedule.merge_short_weeks
        return n > 0 and self.workdays(monday) <= n

    def _reaches_next(self, monday: date) -> bool:
        """Whether the cycle holding `monday` might go on into the week after it."""
        hand = self._hand_weeks.get(monday)
        if hand is not None and self._hand_weeks.get(monday + WEEK) == hand:
            return True
        return hand is None and self._short(monday) and (monday + WEEK) not in self._hand

    def _anchor(self, monday: date) -> date:
        """A week no earlier than needed that surely starts a cycle, for walking forward to `monday`."""
        if self.start is not None and monday <= self.start:
            return self.start
        week = monday
        for _ in range(_MAX_CHAIN):
            before = week - WEEK
            if self.start is not None and before < self.start:
                break
            if not self._reaches_next(before):
                break
            week = before
        return week

    def _walk(self, anchor: date) -> Iterator[Span]:
        """The cycles from `anchor` on, as the schedule cuts them (skipped ones included)."""
        if self.schedule.weeks > 1:
            assert self.start is not None
            n = self.schedule.weeks
            first = self.start + timedelta(weeks=n * max(0, (anchor - self.start).days // (7 * n)))
            while first.year <= MAX_YEAR:
                yield Span(first, n)
                first += timedelta(weeks=n)
            return
        week = anchor
        while week.year <= MAX_YEAR:
            hand = self._hand.get(week)
            if hand:
                span = Span(week, hand)
            elif self._short(week) and (week + WEEK) not in self._hand:
                span = Span(week, 2)
            else:
                span = Span(week, 1)
            yield span
            week = span.end

    def spans_from(self, monday: date) -> Iterator[Span]:
        """The cycles holding `monday` and after it (from the first when `monday` is before it), skipped
        ones included."""
        anchor = self.start if self.start is not None and monday < self.start else monday
        if self.schedule.weeks == 1:
            anchor = self._anchor(anchor)
        for span in self._walk(anchor):
            if span.end > monday:
                yield span

    # -- instants --------------------------------------------------------------------------
    def _local(self, d: date, at: time) -> datetime:
        # The UTC round trip turns a wall time in a DST gap into one that exists.
        return datetime.combine(d, at, tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    def _next_workday(self, d: date) -> date:
        for _ in range(400):
            if self.calendar.is_workday(d):
                return d
            d += timedelta(days=1)
        return d

    def _workday_before(self, d: date, floor: date) -> date | None:
        """`d` or the last workday before it, not earlier than `floor` (None when there is none)."""
        while d >= floor:
            if self.calendar.is_workday(d):
                return d
            d -= timedelta(days=1)
        return None

    def opens_at(self, span: Span) -> datetime:
        """The opening, in the span's last week: a non-workday moves to the next workday."""
        nominal = span.last + timedelta(days=self.schedule.open.weekday)
        return self._local(self._next_workday(nominal), self.schedule.open.at)

    def deadline(self, span: Span, opens: datetime) -> datetime:
        """The deadline in the last week, moved back to a workday but never to or before the opening."""
        at = self.schedule.deadline.at
        day = self._workday_before(span.last + timedelta(days=self._deadline_days), opens.date())
        if day is not None and _utc(self._local(day, at)) > _utc(opens):
            return self._local(day, at)
        # Moving back crossed the opening: the first workday from the opening day that is after it.
        day = self._next_workday(opens.date())
        while _utc(self._local(day, at)) <= _utc(opens):
            day = self._next_workday(day + timedelta(days=1))
        return self._local(day, at)

    def reminders(self, opens: datetime, deadline: datetime) -> tuple[tuple[str, datetime], ...]:
        """Each reminder's instant: before the deadline, on a workday, never before the opening."""
        out = []
        for text, offset in self.schedule.reminder_offsets():
            # Subtract in UTC: "24h before" is 24 real hours, also across a DST change.
            raw = (_utc(deadline) - offset).astimezone(self.tz)
            day = self._workday_before(raw.date(), opens.astimezone(self.tz).date())
            when = opens if day is None else (self._local(day, raw.time()) if day != raw.date() else raw)
            out.append((text, when if _utc(when) >= _utc(opens) else opens))
        return tuple(out)

    def times(self, span: Span) -> tuple[datetime, datetime]:
        """(opening, deadline) of the span as the schedule sets them."""
        opens = self.opens_at(span)
        return opens, self.deadline(span, opens)


@dataclass(frozen=True)
class _Entry:
    span: Span
    record: CycleRecord | None


class Timeline:
    """A team's cycles: the stored records where they are, the plan's predictions elsewhere."""

    def __init__(self, plan: CyclePlan, records: Sequence[CycleRecord] = ()) -> None:
        self.plan = plan
        self.tz = plan.tz
        spans: list[tuple[Span, CycleRecord]] = []
        for record in records:
            try:
                spans.append((parse_span(record.label), record))
            except UserError:
                continue  # a row this version cannot read is left alone, not fatal
        self._records = sorted(spans, key=lambda x: (x[0].first, x[0].weeks))
        self._covered = {m for span, _ in self._records for m in span.mondays()}
        # between()'s answers, kept: a timeline never changes (a stored cycle makes a new one), and every
        # DM asks it for the open cycle
        self._between: dict[tuple[date, date], tuple[Cycle, ...]] = {}
        # cycle_at's last answer and the instants (UTC) between which it holds: from its opening until the
        # next cycle opens (every DM asks for the open cycle; the answer changes once a cycle)
        self._open: tuple[datetime, datetime, Cycle] | None = None

    def stored(self) -> list[tuple[Span, CycleRecord]]:
        """The stored cycles with their weeks, oldest first (labels this version cannot read left out)."""
        return list(self._records)

    # -- walking ---------------------------------------------------------------------------
    def _free_runs(self, span: Span) -> Iterator[Span]:
        """The parts of a planned span that no record holds, skipped ones left out."""
        run: list[date] = []
        for monday in [*span.mondays(), None]:
            if monday is not None and monday not in self._covered:
                run.append(monday)
                continue
            if run:
                part = Span(run[0], len(run))
                if not self.plan.is_skipped(part):
                    yield part
                run = []

    def _walk(self, lo: date) -> Iterator[_Entry]:
        """Every cycle with a week on or after the Monday `lo`, oldest first."""
        records = [_Entry(span, rec) for span, rec in self._records if span.end > lo]
        planned = (_Entry(part, None) for span in self.plan.spans_from(lo) for part in self._free_runs(span))
        nxt = next(planned, None)
        i = 0
        while i < len(records) or nxt is not None:
            if nxt is None or (i < len(records) and records[i].span.first <= nxt.span.first):
                yield records[i]
                i += 1
            else:
                yield nxt
                nxt = next(planned, None)

    def _times(self, entry: _Entry) -> tuple[datetime, datetime]:
        rec = entry.record
        if rec is not None and rec.opens_at is not None and rec.deadline is not None:
            return rec.opens_at.astimezone(self.tz), rec.deadline.astimezone(self.tz)
        return self.plan.times(entry.span)

    def _cycle(self, entry: _Entry, following: _Entry | None) -> Cycle:
        opens, deadline = self._times(entry)
        next_opens = self._times(following)[0] if following else opens + timedelta(weeks=entry.span.weeks)
        rec = entry.record
        return Cycle(
            label=rec.label if rec else entry.span.label,
            first_monday=entry.span.first,
            weeks=entry.span.weeks,
            opens_at=opens,
            deadline=deadline,
            reminders=self.plan.reminders(opens, deadline),
            next_opens_at=max(next_opens, opens),
            stored_id=rec.id if rec else None,
            imported=bool(rec and rec.imported),
        )

    # -- queries ---------------------------------------------------------------------------
    def between(self, lo: date, hi: date) -> list[Cycle]:
        """The cycles with a week between the Mondays of `lo` and `hi`, oldest first."""
        lo, hi = monday_of(lo), monday_of(hi)
        known = self._between.get((lo, hi))
        if known is not None:
            return list(known)
        out: list[Cycle] = []
        walk = self._walk(lo)
        entry = next(walk, None)
        while entry is not None and entry.span.first <= hi:
            following = next(walk, None)
            out.append(self._cycle(entry, following))
            entry = following
        if len(self._between) < 64:  # the few ranges a process asks for again and again
            self._between[(lo, hi)] = tuple(out)
        return out

    def cycle_at(self, instant: datetime) -> Cycle | None:
        """The newest cycle opened at `instant` (None before the first one opens)."""
        moment = _utc(_aware(instant))
        held = self._open
        if held is not None and held[0] <= moment < held[1]:
            return held[2]
        week = monday_of(moment.astimezone(self.tz).date())
        lows = [week - timedelta(weeks=_LOOKBACK)]
        earliest = [s.first for s, _ in self._records[:1]] + ([self.plan.start] if self.plan.start else [])
        if earliest and min(earliest) < lows[0]:
            lows.append(min(earliest))
        for lo in lows:
            found = [c for c in self.between(lo, week) if _utc(c.opens_at) <= moment]
            if found:
                newest = max(found, key=lambda c: (_utc(c.opens_at), c.first_monday))
                self._open = (_utc(newest.opens_at), _utc(newest.next_opens_at), newest)
                return newest
        return None

    def next_after(self, instant: datetime) -> Cycle | None:
        """The first cycle opening after `instant`."""
        moment = _utc(_aware(instant))
        week = monday_of(moment.astimezone(self.tz).date())
        if self.plan.start is not None and self.plan.start > week:
            week = self.plan.start  # nothing opens before the first cycle
        for cycle in self.between(week - timedelta(weeks=_LOOKBACK), week + timedelta(weeks=110)):
            if _utc(cycle.opens_at) > moment:
                return cycle
        return None

    def by_label(self, label: str) -> Cycle:
        """The cycle called `label`, or the cycle holding that one week; a UserError says why not."""
        span = parse_span(label)
        text = span.label
        near = self.between(span.first, span.last)
        for cycle in near:
            if (cycle.first_monday, cycle.weeks) == (span.first, span.weeks):
                return cycle
        if span.weeks == 1:
            for cycle in near:
                if cycle.first_monday <= span.first <= cycle.last_monday:
                    return cycle
        if near:
            holder = near[0]
            raise self.plan.not_a_cycle(text, week_label(max(span.first, holder.first_monday)), holder.label)
        start = self.plan.start
        if start is not None and span.first < start:
            first = next(iter(self.between(start, start)), None)
            raise UserError("label_before_first", label=text, first=first.label if first else start)
        raise UserError("label_skipped", label=text)


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {dt!r}")
    return dt


def _utc(dt: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall time; UTC compares real instants.
    return dt.astimezone(UTC)
