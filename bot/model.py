"""Plain domain values shared by the core: sections' text, summary items, parsed reports.

Nothing here imports an SDK or the database; every module of the core speaks these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

SectionStyle = Literal["item", "heading"]
SectionState = Literal["submitted", "missing", "skipped", "away"]
CycleState = Literal["upcoming", "open", "closed", "imported"]
SummarySource = Literal["llm", "offline", "none", "imported", "edited"]


@dataclass(frozen=True)
class SummaryItem:
    """One sentence of 收获与反思 or 下周工作及目标 and the section keys it came from."""

    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class SectionText:
    """A report section as the summarizers and the renderer see it."""

    key: str
    title: str
    content: str  # the owners' Markdown text, as written (may be empty)
    state: SectionState = "submitted"
    style: SectionStyle = "item"


@dataclass
class Summary:
    """The two closing sections and how they were made."""

    reflections: list[SummaryItem]
    next_week: list[SummaryItem]
    source: SummarySource
    note: str | None = None  # one line for the user, e.g. why the LLM was not used
    dropped: list[dict[str, object]] = field(default_factory=list)  # items the guard removed, with why
    prompt_version: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    key: str | None = field(default=None, compare=False)  # its stored revision's key, when it was read back from the store
    calls: int = 0


@dataclass(frozen=True)
class SummaryRequest:
    """Everything a summarizer needs for one report."""

    team_title: str
    cycle: str
    language: Literal["zh", "en"]
    sections: tuple[SectionText, ...]
    last_goals: tuple[SummaryItem, ...] = ()  # last cycle's 下周工作及目标


@dataclass(frozen=True)
class ParsedSection:
    title: str
    style: SectionStyle
    content: str  # dedented body text, lines kept exactly apart from the block indent


@dataclass(frozen=True)
class ParsedReport:
    """A report read back from the department's Markdown."""

    cycle: str | None
    created: str | None
    sections: tuple[ParsedSection, ...]
    reflections: tuple[SummaryItem, ...]  # sources hold section *titles* as written, if any
    next_week: tuple[SummaryItem, ...]


@dataclass(frozen=True)
class Cycle:
    """One cycle of a team: its weeks, its (holiday-adjusted) instants, all timezone-aware, and
    whether it is a stored record (opened or imported) or only the schedule's prediction."""

    label: str
    first_monday: date
    weeks: int
    opens_at: datetime
    deadline: datetime
    reminders: tuple[tuple[str, datetime], ...]  # (offset as written, e.g. "24h", instant)
    next_opens_at: datetime  # answers are taken until then
    stored_id: int | None = None
    imported: bool = False

    @property
    def week_labels(self) -> tuple[str, ...]:
        """The ISO weeks it spans, like ("2024-W38", "2024-W39")."""
        out = []
        for i in range(self.weeks):
            year, week, _ = (self.first_monday + timedelta(weeks=i)).isocalendar()
            out.append(f"{year}-W{week:02d}")
        return tuple(out)

    @property
    def last_monday(self) -> date:
        return self.first_monday + timedelta(weeks=self.weeks - 1)

    def state(self, now: datetime) -> CycleState:
        """imported, upcoming, open (taking answers) or closed, at `now`."""
        if self.imported:
            return "imported"
        if now < self.opens_at:
            return "upcoming"
        return "open" if now < self.next_opens_at else "closed"
