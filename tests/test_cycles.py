"""Cycles and holidays with real calendars and time zones (spec §3)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import holidays
from bot.config import Schedule
from bot.cycles import CyclePlan, Span, Timeline, cycle_label, week_label
from bot.errors import UserError
from bot.holidays import Calendar
from bot.model import Cycle

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def sh(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def plan(tz: ZoneInfo = SH, **kw: object) -> CyclePlan:
    fields: dict[str, object] = {"open": "mon 10:00", "deadline": "thu 18:00", "holidays": "CN"}
    fields.update(kw)
    return CyclePlan(Schedule.model_validate(fields), tz)


def cn(tz: ZoneInfo = SH, records: tuple[Record, ...] = (), **kw: object) -> Timeline:
    return Timeline(plan(tz, **kw), records)


@dataclass(frozen=True)
class Record:
    """A stored cycle, as the database gives it to the timeline."""

    label: str
    opens_at: datetime | None = None
    deadline: datetime | None = None
    imported: bool = False
    id: int = 1


def labels(cycles: Timeline, lo: date, hi: date) -> list[str]:
    return [c.label for c in cycles.between(lo, hi)]


def openings(cycles: Timeline, start: datetime, end: datetime) -> list[Cycle]:
    """The cycles opening in [start, end)."""
    return [c for c in cycles.between(start.date() - timedelta(days=14), end.date()) if start <= c.opens_at < end]


def label_at(cycles: Timeline, instant: datetime) -> str | None:
    c = cycles.cycle_at(instant)
    return c.label if c else None


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The once-per-process memory would hide warnings already given by earlier tests.
    monkeypatch.setattr(holidays, "_warned_years", set())


# -- Calendar --------------------------------------------------------------------------------


def test_cn_calendar_knows_national_day_2024() -> None:
    cal = Calendar("CN", (), ())
    assert cal.is_workday(date(2024, 9, 29)) is True  # Sunday, adjusted workday (调休)
    assert cal.is_workday(date(2024, 9, 30)) is True
    assert cal.is_workday(date(2024, 10, 1)) is False
    assert cal.is_workday(date(2024, 10, 7)) is False  # Monday, still off
    assert cal.is_workday(date(2024, 10, 12)) is True  # Saturday, adjusted workday


def test_none_calendar_works_every_day() -> None:
    cal = Calendar("none", [date(2024, 10, 8)], [])
    days = [date(2024, 10, 1) + timedelta(days=i) for i in range(14)]
    assert [cal.is_workday(d) for d in days] == [True] * 14


def test_extra_days_override_the_package() -> None:
    cal = Calendar("CN", extra_holidays=[date(2024, 9, 30)], extra_workdays=[date(2024, 10, 1)])
    assert cal.is_workday(date(2024, 9, 30)) is False
    assert cal.is_workday(date(2024, 10, 1)) is True
    assert cal.is_workday(date(2024, 10, 2)) is False


def test_from_schedule_takes_mode_and_extra_days() -> None:
    schedule = Schedule(holidays="CN", extra_holidays=(date(2027, 1, 1),), extra_workdays=(date(2027, 1, 2),))
    cal = Calendar.from_schedule(schedule)
    assert cal.mode == "CN"
    assert (cal.is_workday(date(2027, 1, 1)), cal.is_workday(date(2027, 1, 2))) == (False, True)


def test_year_without_data_uses_weekends_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.holidays")
    cal = Calendar("CN", (), ())
    other = Calendar("CN", (), ())  # the warning is per process, not per calendar
    days = [date(2027, 1, 1) + timedelta(days=i) for i in range(60)]
    got = [c.is_workday(d) for _ in range(3) for c in (cal, other) for d in days]
    assert got == [d.weekday() < 5 for d in days] * 6
    assert cal.is_workday(date(2027, 1, 1)) is True  # New Year's Day, unknown without data
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "2027" in message and "2026" in message and "extra_holidays" in message


def test_extra_days_apply_after_the_data_ends() -> None:
    cal = Calendar("CN", extra_holidays=[date(2027, 2, 8)], extra_workdays=[date(2027, 2, 20)])
    assert cal.is_workday(date(2027, 2, 8)) is False  # Monday, listed off
    assert cal.is_workday(date(2027, 2, 20)) is True  # Saturday, listed as a workday
    assert cal.is_workday(date(2027, 2, 9)) is True


# -- labels ----------------------------------------------------------------------------------


def test_labels() -> None:
    assert week_label(date(2024, 10, 3)) == "2024-W40"
    assert week_label(date(2024, 12, 30)) == "2025-W01"
    assert cycle_label(date(2024, 9, 16), 1) == "2024-W38"
    assert cycle_label(date(2024, 9, 16), 2) == "2024-W38&W39"
    assert cycle_label(date(2024, 9, 16), 3) == "2024-W38&W40"
    assert cycle_label(date(2024, 12, 23), 2) == "2024-W52&2025-W01"
    assert cycle_label(date(2020, 12, 28), 2) == "2020-W53&2021-W01"


def test_two_week_cycles_count_from_start() -> None:
    cycles = cn(weeks=2, start="2024-W38")
    assert labels(cycles, date(2024, 9, 1), date(2025, 1, 13)) == [
        "2024-W38&W39",
        "2024-W40&W41",
        "2024-W42&W43",
        "2024-W44&W45",
        "2024-W46&W47",
        "2024-W48&W49",
        "2024-W50&W51",
        "2024-W52&2025-W01",
        "2025-W02&W03",
    ]
    crossing = cycles.by_label("2024-W52&2025-W01")
    assert (crossing.first_monday, crossing.weeks) == (date(2024, 12, 23), 2)
    assert crossing.week_labels == ("2024-W52", "2025-W01")
    # Opens and closes in the last week: Mon 2024-12-30 and Thu 2025-01-02.
    assert (crossing.opens_at, crossing.deadline) == (sh(2024, 12, 30, 10), sh(2025, 1, 2, 18))
    assert crossing.next_opens_at == sh(2025, 1, 13, 10)


def test_two_week_cycle_opens_in_its_last_week() -> None:
    cycles = cn(weeks=2, start="2024-W38")
    c = cycles.by_label(" 2024-w38&w39 ")  # case and spaces do not matter
    assert (c.label, c.first_monday) == ("2024-W38&W39", date(2024, 9, 16))
    assert (c.opens_at, c.deadline) == (sh(2024, 9, 23, 10), sh(2024, 9, 26, 18))
    # 2024-W40&W41 opens on W41's Monday, 2024-10-07, still National Day: Tuesday instead.
    assert c.next_opens_at == sh(2024, 10, 8, 10)
    assert cycles.cycle_at(sh(2024, 10, 7, 12)) == c


# -- National Day 2024, open mon 10:00, deadline thu 18:00 ------------------------------------


def test_national_day_deadline_moves_back_and_reminders_stay_after_opening() -> None:
    w40 = cn().by_label("2024-W40")
    assert w40.opens_at == sh(2024, 9, 30, 10)
    # Thu 10-03 is off; Wed and Tue too: the workday before is Mon 09-30, after the opening.
    assert w40.deadline == sh(2024, 9, 30, 18)
    assert w40.deadline.utcoffset() == timedelta(hours=8)
    # 24h before is Sun 09-29 18:00, a workday (调休) but before the opening: clamped to it.
    assert w40.reminders == (("24h", sh(2024, 9, 30, 10)), ("2h", sh(2024, 9, 30, 16)))
    assert w40.next_opens_at == sh(2024, 10, 8, 10)


def test_national_day_opening_moves_forward() -> None:
    w41 = cn().by_label("2024-W41")
    assert (w41.label, w41.opens_at, w41.deadline) == ("2024-W41", sh(2024, 10, 8, 10), sh(2024, 10, 10, 18))
    assert w41.reminders == (("24h", sh(2024, 10, 9, 18)), ("2h", sh(2024, 10, 10, 16)))
    assert w41.next_opens_at == sh(2024, 10, 14, 10)


def test_cycle_at_follows_adjusted_openings() -> None:
    cycles = cn()
    assert label_at(cycles, sh(2024, 9, 30, 9, 59)) == "2024-W39"
    assert label_at(cycles, sh(2024, 9, 30, 10)) == "2024-W40"
    # W41's nominal opening (Mon 10-07) is a holiday: W40 keeps taking answers until Tuesday.
    assert label_at(cycles, sh(2024, 10, 7, 12)) == "2024-W40"
    assert label_at(cycles, sh(2024, 10, 8, 9, 59)) == "2024-W40"
    assert label_at(cycles, sh(2024, 10, 8, 10)) == "2024-W41"
    # Any time zone names the same instant.
    utc_instant = datetime(2024, 10, 8, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert label_at(cycles, utc_instant) == "2024-W41"


def test_one_timeline_asked_in_any_order_answers_as_a_fresh_one() -> None:
    """cycle_at keeps its last answer for as long as it holds (until the next cycle opens): asked hour by hour
    across National Day 2024 (merged weeks, a Tuesday opening, 调休 weekends), shuffled, with stored cycles
    among them, one timeline answers each instant as a new one does."""
    import random

    records = (Record("2024-W39", sh(2024, 9, 23, 10), sh(2024, 9, 26, 18), id=1),
               Record("2024-W40", sh(2024, 9, 30, 10), sh(2024, 10, 3, 18), id=2))
    kept = cn(records=records)
    instants = [sh(2024, 9, 20, 0) + timedelta(hours=h) for h in range(24 * 40)]
    instants += [sh(2024, 10, 8, 9, 59), sh(2024, 10, 8, 10), sh(2024, 9, 30, 10)]  # the edges themselves
    random.Random(7).shuffle(instants)
    answers = [(i, label_at(kept, i), label_at(cn(records=records), i)) for i in instants]
    assert [a for a in answers if a[1] != a[2]] == []
    assert {a[1] for a in answers} >= {"2024-W38", "2024-W39", "2024-W40", "2024-W41", "2024-W42", "2024-W43"}


def test_deadline_before_adjusted_opening_goes_to_first_workday_after_it() -> None:
    # Mon 10-07 18:00 is off and every day back to the opening (Tue 10-08) is before it.
    assert cn(deadline="mon 18:00").by_label("2024-W41").deadline == sh(2024, 10, 8, 18)
    # Tue 10-08 09:00 is a workday but before the 10:00 opening: Wednesday 09:00.
    assert cn(deadline="tue 09:00").by_label("2024-W41").deadline == sh(2024, 10, 9, 9)


def test_reminder_on_a_weekend_moves_to_the_workday_before() -> None:
    c = cn(open="wed 10:00", deadline="mon 18:00").by_label("2024-W10")
    assert (c.opens_at, c.deadline) == (sh(2024, 3, 6, 10), sh(2024, 3, 11, 18))
    # 24h before is Sun 03-10 18:00: Friday at the same time of day.
    assert c.reminders == (("24h", sh(2024, 3, 8, 18)), ("2h", sh(2024, 3, 11, 16)))


def test_mid_autumn_2024_and_cycles_between() -> None:
    cycles = cn(start="2024-W38")
    assert cycles.cycle_at(sh(2024, 9, 18, 9)) is None  # the first cycle has not opened yet
    got = openings(cycles, sh(2024, 9, 1, 0), sh(2024, 10, 8, 10))
    # W38's Monday and Tuesday are Mid-Autumn days off; W41 opens exactly at `end`, so is left out.
    assert [(c.label, c.opens_at) for c in got] == [
        ("2024-W38", sh(2024, 9, 18, 10)),
        ("2024-W39", sh(2024, 9, 23, 10)),
        ("2024-W40", sh(2024, 9, 30, 10)),
    ]
    assert [c.label for c in openings(cycles, sh(2024, 9, 30, 10), sh(2024, 10, 8, 10, 1))] == [
        "2024-W40",
        "2024-W41",
    ]
    assert openings(cycles, sh(2024, 10, 1, 0), sh(2024, 10, 8, 0)) == []


# -- skipped cycles ---------------------------------------------------------------------------


def test_spring_festival_2026_week_is_skipped() -> None:
    cycles = cn()
    assert cycles.plan.is_skipped(Span(date(2026, 2, 16), 1))
    w07 = cycles.by_label("2026-W07")
    assert (w07.opens_at, w07.deadline) == (sh(2026, 2, 9, 10), sh(2026, 2, 12, 18))
    # W08 has no workday; W09's Monday is still off, so the next opening is Tue 02-24.
    assert w07.next_opens_at == sh(2026, 2, 24, 10)
    assert cycles.cycle_at(sh(2026, 2, 18, 12)) == w07
    assert cycles.cycle_at(sh(2026, 2, 24, 9)) == w07
    assert label_at(cycles, sh(2026, 2, 24, 10)) == "2026-W09"
    with pytest.raises(UserError, match="2026-W08 is skipped"):
        cycles.by_label("2026-W08")
    got = openings(cycles, sh(2026, 2, 1, 0), sh(2026, 3, 3, 0))
    assert [c.label for c in got] == ["2026-W06", "2026-W07", "2026-W09", "2026-W10"]


def test_week_listed_off_after_the_data_ends_is_skipped() -> None:
    week = [date(2027, 2, 8) + timedelta(days=i) for i in range(7)]
    cycles = cn(extra_holidays=week)
    w05 = cycles.by_label("2027-W05")
    assert (w05.opens_at, w05.deadline) == (sh(2027, 2, 1, 10), sh(2027, 2, 4, 18))
    assert w05.next_opens_at == sh(2027, 2, 15, 10)
    assert cycles.cycle_at(sh(2027, 2, 10, 12)) == w05
    assert labels(cycles, date(2027, 2, 1), date(2027, 2, 15)) == ["2027-W05", "2027-W07"]
    with pytest.raises(UserError, match="skipped"):
        cycles.by_label("2027-W06")


def test_cycles_in_a_year_without_data_use_weekends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.holidays")
    cycles = cn(deadline="fri 18:00", extra_holidays=[date(2027, 3, 5)])
    for day in range(1, 29):
        cycles.cycle_at(sh(2027, 3, day, 12))
    c = cycles.by_label("2027-W09")
    assert c.opens_at == sh(2027, 3, 1, 10)
    # Fri 2027-03-05 is listed off in the team file: the deadline moves to Thursday.
    assert c.deadline == sh(2027, 3, 4, 18)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


# -- other calendars and schedules ------------------------------------------------------------


def test_holidays_none_shifts_nothing() -> None:
    cycles = cn(holidays="none")
    w40, w41 = cycles.by_label("2024-W40"), cycles.by_label("2024-W41")
    assert (w40.opens_at, w40.deadline) == (sh(2024, 9, 30, 10), sh(2024, 10, 3, 18))
    assert w40.reminders == (("24h", sh(2024, 10, 2, 18)), ("2h", sh(2024, 10, 3, 16)))
    assert w40.next_opens_at == w41.opens_at == sh(2024, 10, 7, 10)


def test_deadline_not_after_opening_is_in_the_following_week() -> None:
    c = cn(open="fri 17:00", deadline="mon 12:00", holidays="none").by_label("2024-W40")
    assert (c.opens_at, c.deadline) == (sh(2024, 10, 4, 17), sh(2024, 10, 7, 12))
    same = cn(open="mon 10:00", deadline="mon 10:00", holidays="none").by_label("2024-W40")
    assert same.deadline == sh(2024, 10, 7, 10)


def test_dst_in_berlin() -> None:
    cycles = cn(BERLIN, open="thu 10:00", deadline="mon 10:00", reminders=["48h", "2h"], holidays="none")
    c = cycles.by_label("2024-W13")
    assert c.opens_at == datetime(2024, 3, 28, 10, tzinfo=BERLIN)
    assert c.opens_at.utcoffset() == timedelta(hours=1)
    assert c.deadline == datetime(2024, 4, 1, 10, tzinfo=BERLIN)
    assert c.deadline.utcoffset() == timedelta(hours=2)
    # 48 real hours before Mon 10:00 CEST is Sat 09:00 CET, not 10:00.
    (_, r48), (_, r2) = c.reminders
    assert (r48.isoformat(), r2.isoformat()) == ("2024-03-30T09:00:00+01:00", "2024-04-01T08:00:00+02:00")
    # Same-zone subtraction is wall-clock arithmetic; the real span is an hour short of 4 days.
    assert c.deadline.astimezone(UTC) - c.opens_at.astimezone(UTC) == timedelta(days=3, hours=23)
    assert c.next_opens_at.isoformat() == "2024-04-04T10:00:00+02:00"


def test_dst_gap_opening_becomes_a_real_time() -> None:
    c = cn(BERLIN, open="sun 02:30", deadline="sun 20:00", holidays="none").by_label("2024-W13")
    assert c.opens_at.isoformat() == "2024-03-31T03:30:00+02:00"  # 02:30 does not exist that night


def test_weekly_without_start_is_every_iso_week() -> None:
    cycles = cn(holidays="none")
    c = cycles.cycle_at(datetime(2031, 1, 1, 12, tzinfo=SH))
    assert c is not None and c.label == "2031-W01"
    assert label_at(cycles, datetime(1999, 6, 1, 12, tzinfo=SH)) == "1999-W22"
    assert cycles.by_label("2024-W01").opens_at == sh(2024, 1, 1, 10)


class CountingCalendar(Calendar):
    """A real CN calendar that counts the days it is asked about."""

    asked = 0

    def is_workday(self, d: date) -> bool:
        self.asked += 1
        return super().is_workday(d)


def test_cycle_at_years_after_start_does_not_walk_every_cycle() -> None:
    schedule = Schedule(weeks=2, start="2004-W02", holidays="CN")
    calendar = CountingCalendar("CN")
    c = Timeline(CyclePlan(schedule, SH, calendar)).cycle_at(sh(2026, 5, 20, 12))
    assert c is not None and c.label == "2026-W20&W21"
    assert c.first_monday == date(2026, 5, 11)
    assert calendar.asked < 100


# -- by_label errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2024-40", "'2024-40' is not a cycle label (like 2024-W40 or 2024-W38&W39)"),
        ("W40", "'W40' is not a cycle label"),
        ("2024-W40&", "is not a cycle label"),
        ("2024-W54&W55", "2024 has no week 54"),
        ("2024-W39&W40", "2024-W39&W40 is not a cycle of this team (2-week cycles from 2024-W38); "
                         "2024-W39 is in cycle 2024-W38&W39"),
        ("2024-W52&W01", "its last week is not after its first"),
        ("2024-W38&W47", "a cycle spans at most 8 weeks"),
        ("2024-W36&W37", "2024-W36&W37 is before this team's first cycle, 2024-W38&W39"),
    ],
)
def test_by_label_errors(label: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        cn(weeks=2, start="2024-W38").by_label(label)
    assert message in str(err.value)


def test_one_week_names_the_cycle_holding_it() -> None:
    cycles = cn(weeks=2, start="2024-W38")
    assert cycles.by_label("2024-W39").label == "2024-W38&W39"
    assert cycles.by_label("2024-w38").label == "2024-W38&W39"
    assert cycles.by_label("2025-W01").label == "2024-W52&2025-W01"


def test_by_label_errors_weekly() -> None:
    with pytest.raises(UserError, match=r"weekly cycles\); 2024-W40 is in cycle 2024-W40"):
        cn().by_label("2024-W40&W41")
    with pytest.raises(UserError, match="before this team's first cycle, 2024-W38"):
        cn(start="2024-W38").by_label("2024-W37")


# -- the plan: weeks merged around holidays (spec §3) -----------------------------------------


def merged(**kw: object) -> Timeline:
    return cn(merge_short_weeks=3, **kw)


def test_short_weeks_merge_around_mid_autumn_and_national_day_2024() -> None:
    cycles = merged()
    assert labels(cycles, date(2024, 9, 2), date(2024, 10, 21)) == [
        "2024-W36", "2024-W37", "2024-W38&W39", "2024-W40&W41", "2024-W42", "2024-W43"]
    mid_autumn = cycles.by_label("2024-W38&W39")
    # W38 has 3 workdays (Mid-Autumn Mon–Tue off): merged with W39, opening in W39.
    assert (mid_autumn.opens_at, mid_autumn.deadline) == (sh(2024, 9, 23, 10), sh(2024, 9, 26, 18))
    assert mid_autumn.week_labels == ("2024-W38", "2024-W39")
    national_day = cycles.by_label("2024-W40&W41")
    # W40 has one workday (Mon 09-30); W41 opens Tue 10-08, as Mon 10-07 is still a holiday.
    assert (national_day.opens_at, national_day.deadline) == (sh(2024, 10, 8, 10), sh(2024, 10, 10, 18))
    assert national_day.reminders == (("24h", sh(2024, 10, 9, 18)), ("2h", sh(2024, 10, 10, 16)))
    assert mid_autumn.next_opens_at == national_day.opens_at
    assert national_day.next_opens_at == sh(2024, 10, 14, 10)
    # The eve of National Day is no longer an 8-hour window: W40 alone is not a cycle.
    assert cycles.by_label("2024-W40") == national_day
    assert cycles.by_label("2024-W38").label == "2024-W38&W39"
    assert label_at(cycles, sh(2024, 9, 30, 12)) == "2024-W38&W39"
    assert label_at(cycles, sh(2024, 10, 8, 10)) == "2024-W40&W41"


def test_short_weeks_merge_in_2025_spring_festival_and_national_day() -> None:
    cycles = merged()
    year = labels(cycles, date(2025, 1, 1), date(2025, 12, 28))
    assert "2025-W05&W06" in year and "2025-W40&W41" in year
    assert "2025-W05" not in year and "2025-W06" not in year and "2025-W40" not in year
    # Labour Day 2025 leaves W18 three workdays: merged by the same rule.
    assert [x for x in year if "&" in x] == ["2025-W05&W06", "2025-W18&W19", "2025-W40&W41"]
    spring = cycles.by_label("2025-W05&W06")
    # Spring Festival: Jan 28 – Feb 4 off; W06 opens Wed 02-05.
    assert (spring.opens_at, spring.deadline) == (sh(2025, 2, 5, 10), sh(2025, 2, 6, 18))
    autumn = cycles.by_label("2025-W41")
    # National Day 2025: Oct 1–8 off; W41 opens Thu 10-09, its Thursday deadline stays.
    assert (autumn.label, autumn.opens_at, autumn.deadline) == (
        "2025-W40&W41", sh(2025, 10, 9, 10), sh(2025, 10, 9, 18))
    assert len(year) == 52 - 3


def test_merge_by_hand_on_top_of_the_rule() -> None:
    cycles = merged(merge=["2024-W42&W43"])
    assert labels(cycles, date(2024, 9, 2), date(2024, 10, 28)) == [
        "2024-W36", "2024-W37", "2024-W38&W39", "2024-W40&W41", "2024-W42&W43", "2024-W44"]
    by_hand = cycles.by_label("2024-W43")
    assert (by_hand.label, by_hand.opens_at, by_hand.deadline) == (
        "2024-W42&W43", sh(2024, 10, 21, 10), sh(2024, 10, 24, 18))
    # A hand merge starting on the short week's partner wins: the short week stays alone.
    alone = merged(merge=["2024-W41&W42"])
    assert labels(alone, date(2024, 9, 30), date(2024, 10, 21)) == ["2024-W40", "2024-W41&W42", "2024-W43"]
    # Without the rule, only the hand merge.
    assert labels(cn(merge=["2024-W38&W39"]), date(2024, 9, 16), date(2024, 10, 7)) == [
        "2024-W38&W39", "2024-W40", "2024-W41"]


def test_merging_does_not_depend_on_where_the_walk_starts() -> None:
    cycles = merged()
    whole = cycles.between(date(2024, 1, 1), date(2025, 12, 28))
    for lo in (date(2024, 9, 23), date(2024, 10, 1), date(2025, 2, 3), date(2025, 10, 6)):
        part = cycles.between(lo, lo + timedelta(weeks=3))
        assert part == [c for c in whole if c.first_monday + timedelta(weeks=c.weeks) > lo
                        and c.first_monday <= lo + timedelta(weeks=3)]


def test_a_year_past_the_calendar_merges_with_extra_holidays(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.holidays")
    off = [date(2027, 10, 1) + timedelta(days=i) for i in range(7)]
    cycles = merged(extra_holidays=off, extra_workdays=[date(2027, 9, 26), date(2027, 10, 9)])
    got = labels(cycles, date(2027, 9, 20), date(2027, 10, 18))
    # Fri 10-01 .. Thu 10-07 off: W39 keeps Mon–Thu (4 workdays); W40 only Fri 10-08 and Sat 10-09 (调休).
    assert got == ["2027-W38", "2027-W39", "2027-W40&W41", "2027-W42"]
    c = cycles.by_label("2027-W40")
    assert (c.label, c.opens_at, c.deadline) == ("2027-W40&W41", sh(2027, 10, 11, 10), sh(2027, 10, 14, 18))
    # Thu 09-30 is the last workday of W39: its deadline stays.
    assert cycles.by_label("2027-W39").deadline == sh(2027, 9, 30, 18)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_merge_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="apply to weekly cycles"):
        Schedule(weeks=2, start="2024-W38", merge_short_weeks=3)
    with pytest.raises(ValueError, match="one week"):
        Schedule(merge=["2024-W40"])
    with pytest.raises(ValueError, match="2024-W40&W41 and 2024-W41&W42 share a week"):
        Schedule(merge=["2024-W41&W42", "2024-W40&W41"])
    with pytest.raises(ValueError):
        Schedule(merge_short_weeks=5)


# -- cycles are records -----------------------------------------------------------------------


def test_stored_cycles_win_over_the_schedule() -> None:
    w40 = Record("2024-W40", sh(2024, 9, 30, 10), sh(2024, 9, 30, 18), id=7)
    cycles = merged(records=(w40,))
    # The opened weekly W40 stays as it was; W41, the rest of the merged pair, is a cycle of its own.
    assert labels(cycles, date(2024, 9, 16), date(2024, 10, 14)) == [
        "2024-W38&W39", "2024-W40", "2024-W41", "2024-W42"]
    got = cycles.by_label("2024-W40")
    assert (got.stored_id, got.opens_at, got.deadline) == (7, sh(2024, 9, 30, 10), sh(2024, 9, 30, 18))
    assert got.next_opens_at == sh(2024, 10, 8, 10)
    assert cycles.by_label("2024-W41").stored_id is None


def test_a_merged_record_in_a_weekly_team_and_weekly_records_in_a_biweekly_one() -> None:
    imported = Record("2024-W38&W39", None, None, imported=True, id=3)
    weekly = cn(records=(imported,))
    assert labels(weekly, date(2024, 9, 9), date(2024, 9, 30)) == ["2024-W37", "2024-W38&W39", "2024-W40"]
    c = weekly.by_label("2024-W38&W39")
    # An imported cycle without stored times takes the schedule's for its weeks.
    assert (c.imported, c.opens_at, c.deadline) == (True, sh(2024, 9, 23, 10), sh(2024, 9, 26, 18))
    assert weekly.by_label("2024-W39") == c
    # The team turns biweekly from W38: the weekly cycles it stored before stay reachable.
    old = (Record("2024-W36", sh(2024, 9, 2, 10), sh(2024, 9, 5, 18), id=1),
           Record("2024-W37", sh(2024, 9, 9, 10), sh(2024, 9, 12, 18), id=2), imported)
    biweekly = cn(records=old, weeks=2, start="2024-W40")
    assert labels(biweekly, date(2024, 9, 2), date(2024, 10, 21)) == [
        "2024-W36", "2024-W37", "2024-W38&W39", "2024-W40&W41", "2024-W42&W43"]
    assert biweekly.by_label("2024-W36").stored_id == 1
    assert label_at(biweekly, sh(2024, 9, 10, 12)) == "2024-W37"


def test_cycles_order_by_weeks_not_labels() -> None:
    recs = (Record("2020-W53&2021-W01", None, None, imported=True, id=1),
            Record("2021-W02", None, None, imported=True, id=2))
    cycles = cn(records=recs, holidays="none")
    got = cycles.between(date(2020, 12, 21), date(2021, 1, 11))
    assert [c.label for c in got] == ["2020-W52", "2020-W53&2021-W01", "2021-W02"]
    assert got[1].next_opens_at == got[2].opens_at
