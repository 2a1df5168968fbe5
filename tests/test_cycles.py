"""Cycles and holidays with real calendars and time zones (spec §3)."""

from __future__ import annotations

import logging
import time as clock
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import holidays
from bot.config import Schedule
from bot.cycles import CycleCalendar, cycle_label, week_label
from bot.errors import UserError
from bot.holidays import Calendar

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def sh(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def cn(tz: ZoneInfo = SH, **kw: object) -> CycleCalendar:
    fields: dict[str, object] = {"open": "mon 10:00", "deadline": "thu 18:00", "holidays": "CN"}
    fields.update(kw)
    return CycleCalendar(Schedule.model_validate(fields), tz)


def label_at(cycles: CycleCalendar, instant: datetime) -> str | None:
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
    assert [cycles.label(i) for i in range(9)] == [
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
    assert crossing.index == 7
    # Opens and closes in the last week: Mon 2024-12-30 and Thu 2025-01-02.
    assert (crossing.opens_at, crossing.deadline) == (sh(2024, 12, 30, 10), sh(2025, 1, 2, 18))
    assert crossing.next_opens_at == sh(2025, 1, 13, 10)


def test_two_week_cycle_opens_in_its_last_week() -> None:
    cycles = cn(weeks=2, start="2024-W38")
    c = cycles.by_label(" 2024-w38&w39 ")  # case and spaces do not matter
    assert (c.label, c.index) == ("2024-W38&W39", 0)
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
    got = cycles.cycles_between(sh(2024, 9, 1, 0), sh(2024, 10, 8, 10))
    # W38's Monday and Tuesday are Mid-Autumn days off; W41 opens exactly at `end`, so is left out.
    assert [(c.label, c.opens_at) for c in got] == [
        ("2024-W38", sh(2024, 9, 18, 10)),
        ("2024-W39", sh(2024, 9, 23, 10)),
        ("2024-W40", sh(2024, 9, 30, 10)),
    ]
    assert [c.label for c in cycles.cycles_between(sh(2024, 9, 30, 10), sh(2024, 10, 8, 10, 1))] == [
        "2024-W40",
        "2024-W41",
    ]
    assert cycles.cycles_between(sh(2024, 10, 1, 0), sh(2024, 10, 8, 0)) == []


# -- skipped cycles ---------------------------------------------------------------------------


def test_spring_festival_2026_week_is_skipped() -> None:
    cycles = cn()
    assert cycles.is_skipped(cycles._index_of(date(2026, 2, 16)))
    w07 = cycles.by_label("2026-W07")
    assert (w07.opens_at, w07.deadline) == (sh(2026, 2, 9, 10), sh(2026, 2, 12, 18))
    # W08 has no workday; W09's Monday is still off, so the next opening is Tue 02-24.
    assert w07.next_opens_at == sh(2026, 2, 24, 10)
    assert cycles.cycle_at(sh(2026, 2, 18, 12)) == w07
    assert cycles.cycle_at(sh(2026, 2, 24, 9)) == w07
    assert label_at(cycles, sh(2026, 2, 24, 10)) == "2026-W09"
    with pytest.raises(UserError, match="2026-W08 is skipped"):
        cycles.by_label("2026-W08")
    got = cycles.cycles_between(sh(2026, 2, 1, 0), sh(2026, 3, 3, 0))
    assert [c.label for c in got] == ["2026-W06", "2026-W07", "2026-W09", "2026-W10"]


def test_week_listed_off_after_the_data_ends_is_skipped() -> None:
    week = [date(2027, 2, 8) + timedelta(days=i) for i in range(7)]
    cycles = cn(extra_holidays=week)
    w05 = cycles.by_label("2027-W05")
    assert (w05.opens_at, w05.deadline) == (sh(2027, 2, 1, 10), sh(2027, 2, 4, 18))
    assert w05.next_opens_at == sh(2027, 2, 15, 10)
    assert cycles.cycle_at(sh(2027, 2, 10, 12)) == w05
    assert cycles.at_index(cycles._index_of(date(2027, 2, 8))) is None
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


def test_weekly_without_start_is_every_iso_week_and_fast() -> None:
    cycles = cn(holidays="none")
    started = clock.perf_counter()
    c = cycles.cycle_at(datetime(2031, 1, 1, 12, tzinfo=SH))
    assert c is not None and c.label == "2031-W01"
    assert label_at(cycles, datetime(1999, 6, 1, 12, tzinfo=SH)) == "1999-W22"
    assert cycles.by_label("2024-W01").opens_at == sh(2024, 1, 1, 10)
    assert clock.perf_counter() - started < 0.5


class CountingCalendar(Calendar):
    """A real CN calendar that counts the days it is asked about."""

    asked = 0

    def is_workday(self, d: date) -> bool:
        self.asked += 1
        return super().is_workday(d)


def test_cycle_at_years_after_start_does_not_walk_every_cycle() -> None:
    schedule = Schedule(weeks=2, start="2004-W02", holidays="CN")
    calendar = CountingCalendar("CN")
    c = CycleCalendar(schedule, SH, calendar).cycle_at(sh(2026, 5, 20, 12))
    assert c is not None and c.label == "2026-W20&W21"
    assert c.index == (date(2026, 5, 11) - date(2004, 1, 5)).days // 14
    assert calendar.asked < 100


# -- by_label errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2024-40", "'2024-40' is not a cycle label: expected one like 2024-W38&W39"),
        ("W40", "'W40' is not a cycle label"),
        ("2024-W40&", "is not a cycle label"),
        ("2024-W54&W55", "2024 has no week 54"),
        (
            "2024-W39",
            "2024-W39 is not a cycle of this team (2-week cycles from 2024-W38); 2024-W39 is in cycle 2024-W38&W39",
        ),
        ("2024-W38", "2024-W38 is in cycle 2024-W38&W39"),
        ("2024-W39&W40", "2024-W39 is in cycle 2024-W38&W39"),
        ("2024-W52&W01", "2024-W52 is in cycle 2024-W52&2025-W01"),
        ("2024-W36&W37", "2024-W36&W37 is before this team's first cycle, 2024-W38&W39"),
    ],
)
def test_by_label_errors(label: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        cn(weeks=2, start="2024-W38").by_label(label)
    assert message in str(err.value)


def test_by_label_errors_weekly() -> None:
    with pytest.raises(UserError, match=r"weekly cycles\); 2024-W40 is in cycle 2024-W40"):
        cn().by_label("2024-W40&W41")
    with pytest.raises(UserError, match="before this team's first cycle, 2024-W38"):
        cn(start="2024-W38").by_label("2024-W37")
