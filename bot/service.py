"""The use-cases, platform-neutral: record, edit, delete and skip answers; status; compile; import.

Every platform edge (Slack, Feishu, the console) calls these; nothing here imports an SDK.
"""

from __future__ import annotations

import hashlib
import logging
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.config import Member, Section, Team, TeamFile
from bot.cycles import CyclePlan, Timeline, monday_of, parse_span
from bot.due import Due
from bot.errors import AlreadyHandled, UserError
from bot.model import (
    Cycle,
    ParsedReport,
    SectionState,
    SectionText,
    Summary,
    SummaryItem,
    SummaryRequest,
)
from bot.parse import parse_report
from bot.ports import Store
from bot.records import (
    ImportedReport,
    ImportedSection,
    Outgoing,
    Snapshot,
    StoredCycle,
    StoredSection,
    StoredUpdate,
    SummaryRevision,
)
from bot.render import SOURCES_SUFFIX, render_report
from bot.titles import norm_title, sections_named

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 20000
MAX_REPORT_BYTES = 5 * 1024 * 1024  # a weekly report is tens of kB; a year of them still far below this
IMPORT_MEMBER = "(import)"
# told after each report is written: (reports written, reports in all, the cycle just written)
ImportProgress = Callable[[int, int, str], None]
CACHE_S = 60.0  # ids found by email and cycles opened by another process are read again after this
MISS_REREAD_S = 1.0  # an unknown user id re-reads the stored ids, at most this often
Clock = Callable[[], datetime]


PUBLISH_STALE = timedelta(seconds=60)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SummarizerLike(Protocol):
    def summarize(self, request: SummaryRequest, *, cycle_id: int | None = None) -> Summary: ...


@dataclass(frozen=True)
class SectionStatus:
    key: str
    title: str
    owners: tuple[str, ...]
    state: SectionState
    late: bool = False


@dataclass(frozen=True)
class Status:
    team: Team
    cycle: Cycle
    sections: tuple[SectionStatus, ...]
    skipped: frozenset[str] = frozenset()
    away: frozenset[str] = frozenset()  # members away on the deadline

    @property
    def missing_owners(self) -> list[str]:
        """Owners of missing sections who have neither skipped the cycle nor are away, in section order."""
        seen: list[str] = []
        for s in self.sections:
            if s.state == "missing":
                seen.extend(o for o in s.owners if o not in seen and o not in self.skipped and o not in self.away)
        return seen

    def to_json(self) -> dict[str, Any]:
        def row(s: SectionStatus) -> dict[str, Any]:
            out: dict[str, Any] = {"key": s.key, "title": s.title, "owners": list(s.owners), "state": s.state}
            if s.late:
                out["late"] = True
            away = [o for o in s.owners if o in self.away]
            if away:
                out["away"] = away
            return out

        return {
            "team": self.team.key,
            "cycle": self.cycle.label,
            "weeks": list(self.cycle.week_labels),
            "opens_at": self.cycle.opens_at.isoformat(),
            "deadline": self.cycle.deadline.isoformat(),
            "sections": [row(s) for s in self.sections],
        }


@dataclass(frozen=True)
class Report:
    team: Team
    cycle: str
    sections: tuple[SectionText, ...]
    summary: Summary | None
    markdown: str
    revision: SummaryRevision | None = None  # the stored revision the closing sections are
    published: bool = False  # that revision is the one last published

    @property
    def summary_source(self) -> str:
        return self.summary.source if self.summary else "none"

    @property
    def summary_state(self) -> str:
        """draft | edited | published | imported | none (spec §4)."""
        if self.summary is None:
            return "none"
        if self.published:
            return "published"
        return {"imported": "imported", "edited": "edited"}.get(self.summary.source, "draft")

    @property
    def digest(self) -> str:
        """What the report says, whenever compiled: its Markdown without the `Created:` line."""
        body = "\n".join(ln for ln in self.markdown.splitlines() if not ln.startswith("Created:"))
        return hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        def items(xs: Sequence[SummaryItem]) -> list[dict[str, Any]]:
            return [{"text": i.text, "sources": list(i.sources)} for i in xs]

        return {
            "team": self.team.key,
            "cycle": self.cycle,
            "title": self.team.title,
            "sections": [{"key": s.key, "title": s.title, "state": s.state, "content": s.content} for s in self.sections],
            "reflections": items(self.summary.reflections) if self.summary else [],
            "next_week": items(self.summary.next_week) if self.summary else [],
            "summary_source": self.summary_source,
            "summary_state": self.summary_state,
            "edited": ({"by": self.revision.author, "at": self.revision.created_at.isoformat()}
                       if self.revision is not None and self.revision.source == "edited" else None),
            "markdown": self.markdown,
        }


@dataclass(frozen=True)
class Recorded:
    """An answer stored for a section."""

    update: StoredUpdate
    team: Team
    section: Section
    cycle: str
    created: bool


@dataclass(frozen=True)
class NeedsSection:
    """An answer stored but not yet assigned: the owner picks one of `choices`."""

    update: StoredUpdate
    choices: tuple[tuple[Team, Section], ...]


@dataclass
class ImportResult:
    cycles: list[str] = field(default_factory=list)
    sections: int = 0
    warnings: list[str] = field(default_factory=list)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """No NUL or other control characters (PostgreSQL refuses NUL), no lone surrogates (undecodable input)."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text.replace("\r\n", "\n"))


def preview(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _norm_title(text: str) -> str:
    return norm_title(text)


def section_state(owners: Sequence[str], answered: bool, skipped: Set[str], away: Set[str]) -> SectionState:
    """submitted when anyone wrote; else away when every owner is away (or skipped, some away), skipped
    when every owner skipped, missing otherwise."""
    if answered:
        return "submitted"
    if owners and all(o in skipped or o in away for o in owners):
        return "away" if any(o in away for o in owners) else "skipped"
    return "missing"


class WeeklyService:
    """The use-cases over one team file and one store, reading the time from `clock`."""

    def __init__(
        self, team_file: TeamFile, store: Store, *, clock: Clock = utcnow,
        summarizer: SummarizerLike | None = None, public_url: str = "http://localhost:3000",
    ) -> None:
        self.team_file = team_file
        self.public_url = public_url  # the web view's address, for sign-in links
        self.store = store
        self.clock = clock
        self.summarizer = summarizer
        self._plans: dict[str, CyclePlan] = {}
        self._synced = False
        # In memory, so the ack path reads no database for them: per platform (read at, member → id,
        # id → member); per team (read at, timeline, stored cycles by id). This process's own writes
        # drop them; another process's are seen within CACHE_S, or at once where it matters (a user id
        # not known, a cycle that looks unopened).
        self._ids: dict[str, tuple[float, dict[str, str], dict[str, str]]] = {}
        self._timelines: dict[str, tuple[float, Timeline, dict[int, StoredCycle]]] = {}
        self._cache_lock = threading.Lock()
        self._owners: tuple[TeamFile, dict[str, list[tuple[Team, Section]]]] | None = None

    # -- set-up ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Write the team file's teams, sections and members to the database (idempotent)."""
        if self._synced:
            return
        self.store.sync_members([
            (k, m.name, m.email, self._file_ids(m)) for k, m in self.team_file.members.items()
        ])
        for team in self.team_file.teams:
            self.store.sync_team(key=team.key, title=team.title,
                                 sections=[(s.key, s.title, s.style) for s in team.sections])
        self._synced = True

    @staticmethod
    def _file_ids(member: Member) -> dict[str, str]:
        ids = {"slack": member.slack, "feishu": member.feishu} | dict(member.ids)
        return {platform: user_id for platform, user_id in ids.items() if user_id}

    def healthy(self) -> bool:
        """True when the database answers."""
        return self.store.ping()

    # -- who is who on each platform -----------------------------------------------------------
    def platform_ids(self, platform: str) -> dict[str, str]:
        """member key → user id on `platform`: the team file's, else one found by email and kept."""
        return dict(self._id_maps(platform)[1])

    def platform_id(self, platform: str, member: str) -> str | None:
        """The member's user id on `platform`, from memory."""
        return self._id_maps(platform)[1].get(member)

    def _id_maps(self, platform: str, *, older_than: float = CACHE_S) -> tuple[float, dict[str, str], dict[str, str]]:
        cached = self._ids.get(platform)
        if cached is not None and time.monotonic() - cached[0] <= older_than:
            return cached
        ids = self.store.member_platform_ids(platform=platform)
        ids.update({k: v for k, m in self.team_file.members.items() if (v := m.id_on(platform))})
        by_id = {v: k for k, v in ids.items()}
        by_id.update({v: k for k, m in self.team_file.members.items() if (v := m.id_on(platform))})  # the file wins
        cached = (time.monotonic(), ids, by_id)
        with self._cache_lock:
            self._ids[platform] = cached
        return cached

    def member_by(self, platform: str, user_id: str) -> str | None:
        """The member a platform's user id belongs to (the console's ids are member keys)."""
        if platform == "console":
            return user_id if user_id in self.team_file.members else None
        found = self._id_maps(platform)[2].get(user_id)
        if found is None:  # perhaps found by email in another process since: look again, not too often
            found = self._id_maps(platform, older_than=MISS_REREAD_S)[2].get(user_id)
        return found

    def remember_platform_id(self, member: str, platform: str, user_id: str) -> None:
        """Keep an id a platform resolved from the member's email."""
        self.store.set_member_platform_id(member_key=member, platform=platform, user_id=user_id)
        with self._cache_lock:
            self._ids.pop(platform, None)

    # -- platform deliveries, recognised when they come again ----------------------------------
    def forget_events(self, *, before: datetime) -> int:
        """Forget deliveries older than any platform's redelivery."""
        return self.store.prune_events(before=before)

    # -- outgoing messages, exactly once -------------------------------------------------------
    def answers(self, stored: StoredCycle) -> tuple[list[StoredUpdate], set[str]]:
        """The cycle's answers and who skipped it."""
        return self.store.updates(cycle_id=stored.id), self.store.skips(cycle_id=stored.id)

    def outgoing(self, team_key: str, cycle_label: str) -> list[Outgoing]:
        """The messages claimed for a team's cycle, sent or not."""
        return self.store.outgoing(team_key=team_key, cycle_label=cycle_label)

    def claim_message(self, due: Due, *, at: datetime) -> bool:
        """Claim a message under its unique key before sending it; False if someone already did."""
        return self.store.claim_outgoing(key=due.key, team_key=due.team, cycle_label=due.cycle,
                                         member_key=due.member, kind=due.kind, offset_label=due.offset, at=at)

    def claim_publish(self, key: str, *, team: Team, cycle: str, member: str, target: str) -> bool:
        """Claim one target of one snapshot for publishing: first time, or after a failed try."""
        now = self.now()
        return (self.store.claim_outgoing(key=key, team_key=team.key, cycle_label=cycle, member_key=member,
                                          kind="publish", offset_label=target[:20], at=now)
                or self.store.reclaim_failed(key=key, at=now)
                # a publisher that died mid-way: taken back after a minute
                or self.store.reclaim_stale(key=key, before=now - PUBLISH_STALE, at=now))

    def reclaim_message(self, key: str, *, at: datetime, stale_before: datetime | None = None) -> bool:
        """Take back a failed message (or, with `stale_before`, a claim whose sender died) for another try."""
        if stale_before is None:
            return self.store.reclaim_failed(key=key, at=at)
        return self.store.reclaim_stale(key=key, before=stale_before, at=at)

    def refresh_claims(self, keys: Sequence[str], *, at: datetime) -> None:
        """A live sender's heartbeat: its claims stay fresh while it works."""
        self.store.refresh_outgoing(keys=keys, at=at)

    def finish_message(self, key: str, *, ok: bool, at: datetime, error: str | None = None) -> None:
        self.store.finish_outgoing(key=key, ok=ok, at=at, error=error)

    def update_for_message(self, platform: str, message_id: str) -> StoredUpdate | None:
        """The answer stored for a platform message, if any."""
        return self.store.update_by_message(platform=platform, message_id=message_id)

    def team(self, key: str | None) -> Team:
        return self.team_file.team(key)

    def lang(self, team: Team) -> Literal["zh", "en"]:
        return self.team_file.lang(team)

    def plan(self, team: Team) -> CyclePlan:
        """How the team's schedule cuts weeks into cycles (kept: it caches the calendar's answers)."""
        plan = self._plans.get(team.key)
        if plan is None:
            plan = self._plans[team.key] = CyclePlan(team.schedule, self.team_file.tz(team))
        return plan

    def timeline(self, team: Team) -> Timeline:
        """The team's cycles: stored ones as they were, the schedule's predictions for the rest."""
        return self._timeline(team)[0]

    def _timeline(self, team: Team) -> tuple[Timeline, dict[int, StoredCycle]]:
        self.sync()
        cached = self._timelines.get(team.key)
        if cached is not None and time.monotonic() - cached[0] <= CACHE_S:
            return cached[1], cached[2]
        stored = self.store.cycles(team_key=team.key)
        timeline = Timeline(self.plan(team), stored)
        with self._cache_lock:
            self._timelines[team.key] = (time.monotonic(), timeline, {c.id: c for c in stored})
        return timeline, {c.id: c for c in stored}

    def forget_cycles(self, team_key: str | None = None) -> None:
        """Drop the cycles kept in memory (after storing one): the next look reads them again."""
        with self._cache_lock:
            if team_key is None:
                self._timelines.clear()
            else:
                self._timelines.pop(team_key, None)

    def now(self) -> datetime:
        return self.clock()

    # -- cycles ------------------------------------------------------------------------------
    def current_cycle(self, team: Team, at: datetime | None = None) -> Cycle:
        """The newest opened cycle, or a UserError naming when the first one opens."""
        at = at or self.now()
        timeline = self.timeline(team)
        cycle = timeline.cycle_at(at)
        if cycle is None:
            upcoming = timeline.next_after(at)
            opens = upcoming.opens_at.strftime("%Y-%m-%d %H:%M") if upcoming else "?"
            raise UserError("no_cycle", team=team.title, opens=opens)
        return cycle

    def resolve_cycle(self, team: Team, label: str | None) -> Cycle:
        return self.current_cycle(team) if not label else self.timeline(team).by_label(label)

    def cycles(self, team: Team, lo: str | None = None, hi: str | None = None) -> list[Cycle]:
        """The team's cycles with a week from `lo` to `hi` (labels): by default every stored one and
        the schedule's next eight weeks."""
        timeline = self.timeline(team)
        today = self.now().astimezone(self.team_file.tz(team)).date()
        stored = [span.first for span, _ in timeline.stored()]
        first = parse_span(lo).first if lo else min([*stored, monday_of(today) - timedelta(weeks=4)])
        last = parse_span(hi).last if hi else monday_of(today) + timedelta(weeks=8)
        if last < first:
            raise UserError("cycles_order", lo=lo, hi=hi)
        if (last - first).days > 7 * 53 * 20:
            raise UserError("cycles_too_many")
        listed = timeline.between(first, last)
        if lo is None:  # by default the past is what happened: a week before the bot ran was no cycle of its
            now = self.now()
            listed = [c for c in listed if c.stored_id is not None or c.state(now) != "closed"]
        return listed

    def stored_cycle(self, team: Team, cycle: Cycle, *, at: datetime | None = None) -> StoredCycle | None:
        """The cycle's row, created when it opens (by `at` or now): from then on its label and times are
        kept whatever the schedule later says. None for a cycle that has not opened."""
        self.sync()
        if cycle.stored_id is None and _later(cycle.opens_at, max(self.now(), at or self.now())):
            return None
        if cycle.stored_id is not None:  # the common case on the ack path: from memory
            found = self._timeline(team)[1].get(cycle.stored_id) or self.store.find_cycle(
                team_key=team.key, label=cycle.label)
            if found is not None and found.opens_at is not None:
                return found
        stored = self.store.ensure_cycle(team_key=team.key, label=cycle.label, opens_at=cycle.opens_at,
                                         deadline=cycle.deadline)
        self.forget_cycles(team.key)
        return stored

    def opened_cycle(self, team: Team, cycle: Cycle) -> StoredCycle:
        stored = self.stored_cycle(team, cycle)
        if stored is None:
            raise UserError("not_opened", label=cycle.label)
        return stored

    # -- away --------------------------------------------------------------------------------
    def away_ranges(self, member: str) -> list[tuple[date, date, str]]:
        """The member's days away: the team file's and those said in chat, as (first, last, "file"|"chat")."""
        info = self.team_file.members.get(member)
        ranges = [(a, b, "file") for a, b in (info.away if info else ())]
        ranges += [(a, b, "chat") for _m, a, b in self.store.away(member_key=member)]
        return sorted(ranges)

    def away_on(self, team: Team, cycle: Cycle) -> frozenset[str]:
        """Members away on the cycle's deadline (team time zone): not prompted, reminded or named missing."""
        day = cycle.deadline.astimezone(self.team_file.tz(team)).date()
        chat: dict[str, list[tuple[date, date]]] = {}
        for member, a, b in self.store.away():
            chat.setdefault(member, []).append((a, b))
        return frozenset(
            key for key, m in self.team_file.members.items()
            if any(a <= day <= b for a, b in (*m.away, *chat.get(key, ())))
        )

    def set_away(self, member: str, first: date, last: date) -> list[tuple[Team, Cycle]]:
        """Store days away said in chat; returns the cycles whose deadline falls in them."""
        if last < first:
            raise UserError("away_order")
        if (last - first).days > 366:
            raise UserError("away_too_long")
        self.store.add_away(member_key=member, first=first, last=last, at=self.now())
        return self._cycles_with_deadline_in(member, first, last)

    def clear_away(self, member: str) -> int:
        """Forget the member's chat-set days away from today on (the team file's stay)."""
        tz = self.team_file.tz(self.member_team(member))
        return self.store.clear_away(member_key=member, from_day=self.now().astimezone(tz).date())

    def member_team(self, member: str) -> Team:
        """The team whose time zone and language a member's own commands use."""
        owned = self.owned_sections(member)
        if owned:
            return owned[0][0]
        return next((t for t in self.team_file.teams if member in t.leads), self.team_file.teams[0])

    def _cycles_with_deadline_in(self, member: str, first: date, last: date) -> list[tuple[Team, Cycle]]:
        out = []
        teams = {t.key: t for t, _ in self.owned_sections(member)} or {
            t.key: t for t in self.team_file.teams if member in t.leads}
        for team in teams.values():
            tz = self.team_file.tz(team)
            for cycle in self.timeline(team).between(first - timedelta(days=7), last + timedelta(days=7)):
                if first <= cycle.deadline.astimezone(tz).date() <= last:
                    out.append((team, cycle))
        return out

    # -- owners and their answers ------------------------------------------------------------
    def owned_sections(self, member: str) -> list[tuple[Team, Section]]:
        """The sections `member` owns, in the team file's order (from an index of the file's owners: a DM
        asks several times)."""
        index = self._owners
        if index is None or index[0] is not self.team_file:
            owners: dict[str, list[tuple[Team, Section]]] = {}
            for t in self.team_file.teams:
                for s in t.sections:
                    for owner in dict.fromkeys(s.owners):
                        owners.setdefault(owner, []).append((t, s))
            index = self._owners = (self.team_file, owners)
        return list(index[1].get(member, ()))

    def _pick_section(self, text: str, owned: list[tuple[Team, Section]]) -> tuple[tuple[Team, Section] | None, str]:
        """A leading `【标题】`, `[Title]` or section key chooses the section, and for an owner of several a
        leading title and colon (`生产事件：无`); returns (choice, rest of text)."""
        m = re.match(r"\s*(?:【([^】\n]+)】|\[([^\]\n]+)\])\s*[:：]?\s*", text)
        if m:
            name = _norm_title(m.group(1) or m.group(2))
            for team, sec in owned:
                if name in (_norm_title(sec.title), sec.key.lower()):
                    return (team, sec), text[m.end():]
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*[:：]\s*", text) or re.match(
            r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*\n", text)
        if m:
            for team, sec in owned:
                if m.group(1).lower() == sec.key.lower():
                    return (team, sec), text[m.end():]
        if len(owned) > 1:  # `生产事件：无` — a title and a colon, as people write; longest title first
            for team, sec in sorted(owned, key=lambda o: -len(o[1].title)):
                m = re.match(rf"\s*{re.escape(sec.title.strip())}\s*[:：]\s*", text, re.IGNORECASE)
                if m:
                    return (team, sec), text[m.end():]
        return None, text

    def check_text(self, text: str) -> str:
        """The text worth storing, or a UserError ("empty", "too_long")."""
        body = _clean(text or "").strip("\n").rstrip()
        if not body.strip():
            raise UserError("empty")
        if len(body) > MAX_MESSAGE_CHARS:
            raise UserError("too_long", n=len(body), limit=MAX_MESSAGE_CHARS)
        return body

    def record(
        self, member: str, text: str, *, platform: str, message_id: str | None, event_id: str | None = None,
        changed_ts: float | None = None,
    ) -> Recorded | NeedsSection:
        """Store an owner's message as (part of) their update for the open cycle; the platform's event is
        marked handled in the same transaction (AlreadyHandled for a redelivery, or the same message again)."""
        body = self.check_text(text)
        owned = self.owned_sections(member)
        if not owned:
            raise UserError("not_owner")
        choice, rest = self._pick_section(body, owned)
        if choice is None and len(owned) == 1:
            choice = owned[0]
        if choice is not None:
            body = rest.strip("\n").rstrip() or body
        team = choice[0] if choice else owned[0][0]
        if choice is None and len({t.key for t, _ in owned}) > 1:
            team = owned[0][0]  # parked in the first team's cycle until the owner picks
        cycle = self.current_cycle(team)
        stored = self.opened_cycle(team, cycle)
        now = self.now()
        update, created = self.store.add_update(
            cycle_id=stored.id, section_key=choice[1].key if choice else None, member_key=member,
            platform=platform, message_id=message_id, text=body, at=now, late=now > cycle.deadline,
            event=(platform, event_id) if event_id else None, changed_ts=changed_ts, unskip=True,
        )
        if not created and event_id:
            raise AlreadyHandled(event_id)  # the same message under another delivery id
        if update.section_key is None:
            return NeedsSection(update=update, choices=tuple(owned))
        team, section = self._section_of(update.section_key, owned, team)
        return Recorded(update=update, team=team, section=section, cycle=cycle.label, created=created)

    def _section_of(self, key: str, owned: list[tuple[Team, Section]], default: Team) -> tuple[Team, Section]:
        for team, sec in owned:
            if sec.key == key:
                return team, sec
        found = default.section(key)
        if found is None:
            raise UserError("unknown_section", key=key)
        return default, found

    def assign(self, member: str, update_id: int, section_key: str, *, platform: str | None = None,
               event_id: str | None = None) -> Recorded:
        """The owner's pick for a parked update; moves it to that section's team cycle if needed. The press
        (`event_id`) is marked handled in the same transaction as the change."""
        update = self.store.get_update(update_id=update_id)
        if update is None or update.member_key != member:
            raise UserError("not_yours")
        owned = self.owned_sections(member)
        team, section = self._section_of(section_key, owned, owned[0][0] if owned else self.team_file.teams[0])
        if member not in section.owners:
            raise UserError("not_owner")
        cycle = self.current_cycle(team)
        stored = self.opened_cycle(team, cycle)
        # parked in the first team's cycle, it moves (with its message id, so edits follow) to the chosen one
        assigned = self.store.assign_section(update_id=update_id, section_key=section.key, cycle_id=stored.id,
                                             at=self.now(),
                                             event=(platform, event_id) if platform and event_id else None)
        assert assigned is not None
        return Recorded(update=assigned, team=team, section=section, cycle=cycle.label, created=False)

    def edit(self, member: str, *, platform: str, message_id: str, text: str, event_id: str | None = None,
             changed_ts: float | None = None) -> StoredUpdate | None:
        """An edited chat message replaces its update's text (the earlier one stays a revision), marking the
        event in the same transaction; None when the message was never stored (nothing is marked)."""
        body = self.check_text(text)
        existing = self.store.update_by_message(platform=platform, message_id=message_id)
        if existing is None or existing.member_key != member:
            return None
        owned = self.owned_sections(member)
        choice, rest = self._pick_section(body, owned)
        if choice is not None and choice[1].key == existing.section_key:
            body = rest.strip("\n").rstrip() or body
        return self.store.edit_update(platform=platform, message_id=message_id, text=body, at=self.now(),
                                      event=(platform, event_id) if event_id else None, changed_ts=changed_ts)

    def delete(self, member: str, *, platform: str, message_id: str, event_id: str | None = None,
               changed_ts: float | None = None) -> StoredUpdate | None:
        """A deleted (recalled) chat message removes its update, marking the event in the same transaction."""
        existing = self.store.update_by_message(platform=platform, message_id=message_id)
        if existing is None or existing.member_key != member:
            return None
        return self.store.delete_update(platform=platform, message_id=message_id, at=self.now(),
                                        event=(platform, event_id) if event_id else None, changed_ts=changed_ts)

    @contextmanager
    def together(self, batch: bool = False) -> Iterator[None]:
        """The calls made on this thread inside the block applied in one transaction (storage's group
        commit; `batch`: see the store's). If it is rolled back, what memory keeps of the database (cycles,
        ids) is read again: a call inside may have kept a row the rollback took back."""
        try:
            with self.store.together(batch):
                yield
        except BaseException:
            self.forget_cycles()
            with self._cache_lock:
                self._ids.clear()
            raise

    def mark_event(self, platform: str, event_id: str | None) -> None:
        """Mark an event that stores nothing (a command, a button) handled; AlreadyHandled when it was."""
        if event_id:
            self.store.mark_event(platform=platform, event_id=event_id, at=self.now())

    def skip(self, member: str) -> list[tuple[Team, Cycle, list[Section]]]:
        """Skip the open cycle for every team the member owns sections in; each with the member's sections
        that the skip marks (those nobody has answered: an answered one stays submitted)."""
        owned = self.owned_sections(member)
        if not owned:
            raise UserError("not_owner")
        out = []
        for team in {t.key: t for t, _ in owned}.values():
            cycle = self.current_cycle(team)
            stored = self.opened_cycle(team, cycle)
            self.store.set_skip(cycle_id=stored.id, member_key=member, at=self.now())
            answered = {u.section_key for u in self.store.updates(cycle_id=stored.id)}
            out.append((team, cycle, [s for t, s in owned if t.key == team.key and s.key not in answered]))
        return out

    def draft(self, member: str) -> list[tuple[Team, Cycle, list[tuple[str, str]]]]:
        """The member's current text per section, per team: [(team, cycle, [(section title, text)])]."""
        out = []
        owned = self.owned_sections(member)
        for team in {t.key: t for t, _ in owned}.values():
            cycle = self.current_cycle(team)
            stored = self.opened_cycle(team, cycle)
            titles = {s.key: s.title for s in team.sections}
            unassigned = "（待选择部分）" if self.lang(team) == "zh" else "(section not chosen yet)"
            grouped: dict[str, list[str]] = {}
            for u in self.store.updates(cycle_id=stored.id):
                if u.member_key == member:
                    grouped.setdefault(titles.get(u.section_key or "", unassigned), []).append(u.text)
            out.append((team, cycle, [(title, "\n".join(texts)) for title, texts in grouped.items()]))
        return out

    # -- status and the report ---------------------------------------------------------------
    def status(self, team: Team, label: str | None = None) -> Status:
        cycle = self.resolve_cycle(team, label)
        stored = self.stored_cycle(team, cycle)
        updates = self.store.updates(cycle_id=stored.id) if stored else []
        skips = self.store.skips(cycle_id=stored.id) if stored else set()
        away = self.away_on(team, cycle) if not cycle.imported else frozenset()
        rows = []
        for sec in team.sections:
            mine = [u for u in updates if u.section_key == sec.key]
            state = section_state(sec.owners, bool(mine), skips, away)
            rows.append(SectionStatus(sec.key, sec.title, sec.owners, state, late=bool(mine) and all(u.late for u in mine)))
        return Status(team=team, cycle=cycle, sections=tuple(rows), skipped=frozenset(skips), away=away)

    def section_texts(self, team: Team, stored: StoredCycle | None, cycle: Cycle) -> tuple[SectionText, ...]:
        """The cycle's sections in the team file's order, then extra (imported) ones that have text."""
        updates = self.store.updates(cycle_id=stored.id) if stored else []
        skips = self.store.skips(cycle_id=stored.id) if stored else set()
        away = self.away_on(team, cycle) if not cycle.imported else frozenset()
        by_section: dict[str, list[StoredUpdate]] = {}
        for u in updates:
            if u.section_key:
                by_section.setdefault(u.section_key, []).append(u)
        out: list[SectionText] = []
        for sec in team.sections:
            texts = [u.text for u in by_section.get(sec.key, [])]
            state = section_state(sec.owners, bool(texts), skips, away)
            out.append(SectionText(sec.key, sec.title, "\n".join(texts), state, sec.style))
        known = {s.key for s in team.sections}
        for extra in self.store.sections(team_key=team.key):
            if extra.key not in known and by_section.get(extra.key):
                text = "\n".join(u.text for u in by_section[extra.key])
                out.append(SectionText(extra.key, extra.title, text, "submitted", extra.style))  # type: ignore[arg-type]
        return tuple(out)

    def previous_goals(self, team: Team, cycle: Cycle) -> tuple[SummaryItem, ...]:
        """The 下周工作及目标 that carry over from the stored cycle before `cycle` (by their weeks, merged ones
        too): the published ones, else the imported, else the lead's edited ones; a draft never does. A goal
        written without sources is matched to sections by title."""
        earlier = [rec for span, rec in self.timeline(team).stored() if span.first < cycle.first_monday]
        for prev in earlier[-1:]:
            rev = self.reviewed_summary(prev.id)
            if rev is not None:
                return self.with_sources(team, revision_summary(rev).next_week)
        return ()

    def reviewed_summary(self, cycle_id: int) -> SummaryRevision | None:
        """A cycle's closing sections as people approved them: published, else imported, else edited."""
        published = self.store.latest_snapshot(cycle_id=cycle_id, published=True)
        if published is not None and published.summary_id is not None:
            rev = self.store.summary_revision(summary_id=published.summary_id)
            if rev is not None:
                return rev
        return (self.store.current_summary(cycle_id=cycle_id, sources=("imported",))
                or self.store.current_summary(cycle_id=cycle_id, sources=("edited",)))

    def with_sources(self, team: Team, items: Sequence[SummaryItem]) -> tuple[SummaryItem, ...]:
        """Items as given; one without sources gets the sections its text names by title, if any."""
        sections = [(s.key, s.title) for s in team.sections]
        return tuple(i if i.sources else SummaryItem(i.text, sections_named(i.text, sections)) for i in items)

    def report(self, team: Team, label: str | None = None, *, summarize: bool | None = None,
               draft_unless_reviewed: bool = False) -> Report:
        """Compile the report. Its closing sections: `summarize` None — the current revision (drafted when
        there is none); True — drafted anew; False — none. `draft_unless_reviewed`: drafted anew unless the
        current one is a lead's edit or imported (a stale draft is not worth showing)."""
        cycle = self.resolve_cycle(team, label)
        stored = self.stored_cycle(team, cycle)
        sections = self.section_texts(team, stored, cycle)
        summary: Summary | None = None
        revision: SummaryRevision | None = None
        if summarize is not False and stored is not None:
            revision = self.store.current_summary(cycle_id=stored.id)
            if summarize or (draft_unless_reviewed and revision is not None
                             and revision.source not in ("edited", "imported")):
                revision = None
        if revision is not None:
            summary = revision_summary(revision)
        elif summarize is not False:
            summary = self.summarize(team, cycle, stored, sections)
            if stored is not None:
                revision = self.store.current_summary(cycle_id=stored.id)
        published = False
        if revision is not None and stored is not None:
            last = self.store.latest_snapshot(cycle_id=stored.id, published=True)
            published = last is not None and last.summary_id == revision.id
        created: datetime | str = self.now().astimezone(self.team_file.tz(team))
        if stored is not None and stored.created_text and all(
                u.platform == "import" for u in self.store.updates(cycle_id=stored.id)):
            created = stored.created_text  # the imported report as it was, unless people wrote since
        markdown = render_report(cycle=cycle.label, created=created, sections=sections, summary=summary,
                                 language=self.lang(team))
        return Report(team=team, cycle=cycle.label, sections=sections, summary=summary, markdown=markdown,
                      revision=revision, published=published)

    def summarize(self, team: Team, cycle: Cycle, stored: StoredCycle | None,
                  sections: Sequence[SectionText]) -> Summary:
        """A new draft of the closing sections, kept as the cycle's current revision."""
        request = SummaryRequest(
            team_title=team.title, cycle=cycle.label, language=self.lang(team), sections=tuple(sections),
            last_goals=self.previous_goals(team, cycle),
        )
        if self.summarizer is None:
            from bot.summary_offline import summarize_offline

            summary = summarize_offline(request)
        else:
            summary = self.summarizer.summarize(request, cycle_id=stored.id if stored else None)
        if stored is not None:
            if summary.source == "offline":
                digest = hashlib.sha256(repr((request.sections, request.last_goals)).encode()).hexdigest()[:32]
                self.store.put_summary(cycle_id=stored.id, cache_key=f"offline:{stored.id}:{digest}", summary=summary,
                                       at=self.now())
            elif summary.key:  # the model's answer came from the cache: that draft is current again
                self.store.choose_summary(cache_key=summary.key, at=self.now())
        return summary

    # -- the lead's review ---------------------------------------------------------------------
    def edit_summary(self, team: Team, label: str | None, member: str, reflections: str, next_week: str) -> Report:
        """A lead's own closing sections, one item per line ending in its sources, stored as a new revision."""
        if member not in team.leads:
            raise UserError("not_lead", team=team.title, cmd="edit")
        cycle = self.resolve_cycle(team, label)
        stored = self.opened_cycle(team, cycle)
        titles = [(s.key, s.title) for s in team.sections]
        summary = Summary(reflections=parse_items(reflections, titles), next_week=parse_items(next_week, titles),
                          source="edited")
        self.store.add_edited_summary(cycle_id=stored.id, summary=summary, author=member, at=self.now())
        return self.report(team, cycle.label)

    def snapshot(self, report: Report, member: str | None) -> Snapshot:
        """Keep the report exactly as it is being shown, for Publish to post."""
        cycle = self.resolve_cycle(report.team, report.cycle)
        stored = self.opened_cycle(report.team, cycle)
        return self.store.save_snapshot(cycle_id=stored.id, digest=report.digest, markdown=report.markdown,
                                        summary_id=report.revision.id if report.revision else None, by=member,
                                        at=self.now())

    def get_snapshot(self, snapshot_id: int) -> Snapshot | None:
        return self.store.get_snapshot(snapshot_id=snapshot_id)

    def snapshot_cycle(self, snapshot: Snapshot) -> tuple[Team, str] | None:
        """The team and cycle label a snapshot was taken of (None: a team no longer in the team file)."""
        for team in self.team_file.teams:
            for _span, rec in self.timeline(team).stored():
                if rec.id == snapshot.cycle_id:
                    return team, rec.label
        return None

    def previewed_cycle(self, team: Team, member: str) -> str | None:
        """The cycle of the report `member` last previewed, when that was since the current cycle opened: what
        `/weekly edit` and `/weekly publish` without a cycle act on (else the current cycle)."""
        last = self.store.last_preview(team_key=team.key, member=member)
        if last is None:
            return None
        label, made_at = last
        current = self.timeline(team).cycle_at(self.now())
        return label if current is None or made_at >= current.opens_at else None

    def latest_snapshot(self, team: Team, label: str | None) -> Snapshot | None:
        stored = self.stored_cycle(team, self.resolve_cycle(team, label))
        return self.store.latest_snapshot(cycle_id=stored.id) if stored else None

    # -- import ------------------------------------------------------------------------------
    def import_reports(self, paths: Sequence[str], *, team: Team, label: str | None = None,
                       progress: ImportProgress | None = None) -> ImportResult:
        """Load past reports as history; every file is checked before anything is written, then each report
        is written in one transaction, `progress(done, total, cycle)` called after each."""
        self.sync()
        if label is not None:
            label = _import_label(label, "--cycle")
            if len(paths) > 1:
                raise UserError("import_one_file")
        stored = [(span, rec.label) for span, rec in self.timeline(team).stored()]
        parsed = []
        seen: dict[str, str] = {}
        for path in paths:
            report = _read_report(path)
            if not (label or report.cycle):
                raise UserError("import_no_cycle", path=path)
            cycle_label = label or _import_label(report.cycle or "", path)
            span = parse_span(cycle_label)
            if cycle_label in seen:
                raise UserError("import_same_cycle", path=path, label=cycle_label, other=seen[cycle_label])
            for other_span, other in [*stored, *((parse_span(lab), lab) for lab in seen)]:
                if other != cycle_label and other_span.overlaps(span):
                    raise UserError("import_overlap_here" if other in seen else "import_overlap_stored",
                                    path=path, label=cycle_label, other=other)
            seen[cycle_label] = path
            parsed.append((path, cycle_label, self.plan(team).times(span), report))
        result = ImportResult()
        titles = {_norm_title(s.title): s for s in team.sections} | {s.key.lower(): s for s in team.sections}
        now = self.now()
        try:
            for done, (path, cycle_label, (opens_at, deadline), report) in enumerate(parsed, 1):
                key_of_title: dict[str, str] = {}
                extra: dict[str, StoredSection] = {}
                texts: list[ImportedSection] = []
                for psec in report.sections:
                    sec = titles.get(_norm_title(psec.title))
                    if sec is not None:
                        key = sec.key
                    else:
                        key = "extra_" + hashlib.sha1(_norm_title(psec.title).encode()).hexdigest()[:8]
                        extra.setdefault(key, StoredSection(key, psec.title, psec.style, True))
                        result.warnings.append(
                            f"{path}: section 【{psec.title}】 is not in the team file: kept as an extra section")
                    key_of_title[_norm_title(psec.title)] = key
                    if psec.content.strip():
                        texts.append(ImportedSection(key, f"{team.key}/{cycle_label}/{key}", psec.content))
                summary = None
                if report.reflections or report.next_week:
                    named = [(s.key, s.title) for s in team.sections] + [
                        (key, title) for title, key in key_of_title.items() if key.startswith("extra_")]
                    summary = Summary(reflections=_keyed(report.reflections, key_of_title, named),
                                      next_week=_keyed(report.next_week, key_of_title, named), source="imported")
                self.store.put_imported_report(
                    team_key=team.key, member_key=IMPORT_MEMBER, at=now,
                    report=ImportedReport(label=cycle_label, opens_at=opens_at, deadline=deadline,
                                          created_text=report.created, sections=tuple(texts),
                                          extra_sections=tuple(extra.values()), summary=summary,
                                          summary_key=f"imported:{team.key}:{cycle_label}"))
                result.sections += len(texts)
                result.cycles.append(cycle_label)
                if progress is not None:
                    progress(done, len(parsed), cycle_label)
        finally:
            self.forget_cycles(team.key)
        return result


def revision_summary(rev: SummaryRevision) -> Summary:
    """A stored revision as the closing sections a report shows."""
    return Summary(reflections=list(rev.reflections), next_week=list(rev.next_week),
                   source=rev.source,  # type: ignore[arg-type]
                   note=rev.note, key=rev.key)


_NUMBERING = re.compile(r"^\s*(?:\d+[.、)）]|[-*•])\s*")


def parse_items(text: str, sections: Sequence[tuple[str, str]]) -> list[SummaryItem]:
    """`1. 文本（来源：标题、…）` per line as items whose sources are the sections the suffix names (by title
    or key); an item without a suffix keeps no sources; `（无）` / `(none)` and blank lines are nothing."""
    by_title = {norm_title(title): key for key, title in sections} | {key.lower(): key for key, _ in sections}
    items: list[SummaryItem] = []
    for raw in (text or "").replace("\r\n", "\n").split("\n"):
        line = _NUMBERING.sub("", raw, count=1).strip()
        if not line or line in ("（无）", "(none)", "无"):
            continue
        sources: list[str] = []
        m = SOURCES_SUFFIX.search(line)
        if m:
            line = line[: m.start()].rstrip()
            for name in re.split(r"[、,，;；]", m.group(1) or ""):
                key = by_title.get(norm_title(name.strip().strip("【】"))) or by_title.get(name.strip().lower())
                if key and key not in sources:
                    sources.append(key)
        if line:
            items.append(SummaryItem(line[:2000], tuple(sources)))
    return items[:30]


def _import_label(label: str, where: str) -> str:
    """An imported report's cycle label, normalised (`2024-w38&w39` → `2024-W38&W39`)."""
    try:
        return parse_span(label).label
    except UserError as e:
        raise UserError("in_file", path=where, error=e) from None


def _later(a: datetime, b: datetime) -> bool:
    return a.astimezone(UTC) > b.astimezone(UTC)


def _keyed(items: Sequence[SummaryItem], key_of_title: dict[str, str],
           sections: Sequence[tuple[str, str]]) -> list[SummaryItem]:
    """Imported closing items name their sources by title; store them by section key. An item written
    without sources gets the sections its text names by title."""
    out = []
    for i in items:
        keys = tuple(dict.fromkeys(key_of_title[n] for s in i.sources if (n := _norm_title(s)) in key_of_title))
        out.append(SummaryItem(i.text, keys or (() if i.sources else sections_named(i.text, sections))))
    return out


def _read_report(path: str) -> ParsedReport:
    """A report file, parsed, or one clear line saying why not."""
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise UserError("file_is_dir", path=path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends
            raise UserError("file_not_regular", path=path)
        if info.st_size > MAX_REPORT_BYTES:
            raise UserError("file_too_big", path=path, size=info.st_size, limit=MAX_REPORT_BYTES)
        with p.open("rb") as f:
            raw = f.read(MAX_REPORT_BYTES + 1)
    except FileNotFoundError:
        raise UserError("file_missing", path=path) from None
    except IsADirectoryError:
        raise UserError("file_is_dir", path=path) from None
    except OSError as e:
        raise UserError("file_unreadable", path=path, why=e.strerror) from None
    if len(raw) > MAX_REPORT_BYTES:
        raise UserError("file_too_big", path=path, size=len(raw), limit=MAX_REPORT_BYTES)
    if not raw.strip():
        raise UserError("file_empty", path=path)
    if b"\x00" in raw:
        raise UserError("file_binary", path=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("file_not_utf8", path=path) from None
    try:
        return parse_report(text)
    except UserError as e:
        raise UserError("in_file", path=path, error=e) from None
