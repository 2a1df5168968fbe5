"""SQLAlchemy 2 models: the whole state of weekly-bot lives in these tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which has no zones) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class TeamRow(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))


class SectionRow(Base):
    """A section as known to the database: the team file's, or an extra one met in an import."""

    __tablename__ = "sections"
    __table_args__ = (UniqueConstraint("team_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    style: Mapped[str] = mapped_column(String(20), default="item")
    extra: Mapped[bool] = mapped_column(Boolean, default=False)


class MemberRow(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(300))


class IdentityRow(Base):
    """A member's user id on one platform: from the team file, or found by their email and kept."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("member_key", "platform", name="uq_identities_member_platform"),
        Index("ix_identities_platform_id", "platform", "platform_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    member_key: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(20))
    platform_id: Mapped[str] = mapped_column(String(64))


class CycleRow(Base):
    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("team_id", "label"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(40))
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    imported: Mapped[bool] = mapped_column(Boolean, default=False)
    created_text: Mapped[str | None] = mapped_column(String(100))  # an imported report's `Created:`, as written


class UpdateRow(Base):
    """An owner's answer for one section of one cycle; its text lives in its revisions."""

    __tablename__ = "updates"
    __table_args__ = (UniqueConstraint("platform", "message_id", name="uq_updates_message"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    section_key: Mapped[str | None] = mapped_column(String(100))  # None until the owner picks one
    member_key: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)  # the current text (the newest revision)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    # the platform's time of the newest change applied (a Slack ts): an older change arriving late is ignored
    changed_ts: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revisions: Mapped[list[RevisionRow]] = relationship(
        back_populates="update", order_by="RevisionRow.number", cascade="all, delete-orphan"
    )


class RevisionRow(Base):
    """Every text an update ever had: an edit or a delete adds a row, never overwrites one."""

    __tablename__ = "update_revisions"
    __table_args__ = (UniqueConstraint("update_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # create | edit | delete | assign
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    update: Mapped[UpdateRow] = relationship(back_populates="revisions")


class SkipRow(Base):
    __tablename__ = "skips"
    __table_args__ = (UniqueConstraint("cycle_id", "member_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    member_key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AwayRow(Base):
    """Days a member said in chat they are away (the team file's `away:` adds to these)."""

    __tablename__ = "away"
    __table_args__ = (UniqueConstraint("member_key", "first_day", "last_day", name="uq_away_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    member_key: Mapped[str] = mapped_column(String(100), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProcessedEventRow(Base):
    """Platform events already handled, so a retry or redelivery is recognised."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutgoingRow(Base):
    """A message the bot sends, claimed under a unique key before it is sent (exactly once)."""

    __tablename__ = "outgoing_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    team_key: Mapped[str] = mapped_column(String(100))
    cycle_label: Mapped[str] = mapped_column(String(40))
    member_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    offset_label: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(20), default="claimed")  # claimed | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SummaryRow(Base):
    """A cycle's closing sections: generated (llm/offline, cached by key) or imported history."""

    __tablename__ = "summaries"
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    cache_key: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    prompt_version: Mapped[str | None] = mapped_column(String(60))
    model: Mapped[str | None] = mapped_column(String(120))
    reflections: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    next_week: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    dropped: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str | None] = mapped_column(String(100))  # the lead who edited it; None for a draft
    chosen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # made current again (regenerated)


class SnapshotRow(Base):
    """A compiled report exactly as a lead saw it in a preview: what Publish posts."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("cycle_id", "digest", name="uq_snapshot_digest"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    markdown: Mapped[str] = mapped_column(Text)
    summary_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id", ondelete="SET NULL"))
    made_by: Mapped[str | None] = mapped_column(String(100))
    made_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DocumentRow(Base):
    """A cycle's published document on a platform (a Feishu 云文档, a Slack canvas), updated in place."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("cycle_id", "target", name="uq_document_target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebLinkRow(Base):
    """A sign-in link to the web view (issue 14): only its token's hash is kept; taken once."""

    __tablename__ = "web_links"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebSecretRow(Base):
    """The web view's session-signing secret when WEEKLY_WEB_SECRET is not set: made once, shared by processes."""

    __tablename__ = "web_secrets"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
