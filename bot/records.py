"""What the store hands back: plain frozen values, no ORM objects (the domain never sees SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.model import Summary, SummaryItem


@dataclass(frozen=True)
class StoredUpdate:
    id: int
    cycle_id: int
    section_key: str | None
    member_key: str
    platform: str
    message_id: str | None
    text: str
    deleted: bool
    late: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredRevision:
    number: int
    action: str
    text: str
    at: datetime


@dataclass(frozen=True)
class StoredSection:
    key: str
    title: str
    style: str
    extra: bool


@dataclass(frozen=True)
class StoredCycle:
    id: int
    team_key: str
    label: str
    opens_at: datetime | None
    deadline: datetime | None
    imported: bool
    created_text: str | None = None


@dataclass(frozen=True)
class Outgoing:
    key: str
    team_key: str
    cycle_label: str
    member_key: str
    kind: str
    offset_label: str
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class SummaryRevision:
    """One revision of a cycle's closing sections: drafted (llm / offline), edited by a lead, or imported;
    `published_at` when a snapshot showing it was last published (filled by `summary_revisions`)."""

    id: int
    key: str
    source: str  # llm | offline | imported | edited
    author: str | None
    created_at: datetime
    current_at: datetime  # when it became the current one (made, or drafted again)
    reflections: tuple[SummaryItem, ...]
    next_week: tuple[SummaryItem, ...]
    note: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """A compiled report exactly as a lead saw it: what Publish posts."""

    id: int
    cycle_id: int
    digest: str
    markdown: str
    summary_id: int | None
    made_by: str | None
    made_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class AnswerMark:
    """That a member answered a section of a cycle, and whether only after its deadline: no text."""

    cycle_id: int
    section_key: str | None
    member_key: str
    late: bool


@dataclass(frozen=True)
class ImportedSection:
    """One section's text from a past report, under the message id that makes importing it again a revision."""

    key: str
    message_id: str
    text: str


@dataclass(frozen=True)
class ImportedReport:
    """A past report as the store keeps it, written in one transaction: its cycle, the sections the team
    file does not have, every section's text and its closing sections (under `summary_key`)."""

    label: str
    opens_at: datetime
    deadline: datetime
    created_text: str | None
    sections: tuple[ImportedSection, ...]
    extra_sections: tuple[StoredSection, ...] = ()
    summary: Summary | None = None
    summary_key: str | None = None
