"""What the web view reads (issue 14): a team's cycles, one cycle's report and history, participation
cycle by cycle, search. Read-only use-cases over the service and the store's whole-team reads, so a page
costs a handful of queries however many cycles the team has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import Team
from bot.cycles import monday_of, parse_span
from bot.errors import UserError
from bot.model import Cycle, CycleState, SectionText, Summary
from bot.records import StoredRevision, StoredUpdate, SummaryRevision
from bot.render import render_report
from bot.service import IMPORT_MEMBER, WeeklyService

Presence = Literal["on_time", "late", "skipped", "away", "missing", "pending", "imported"]
PRESENCES: tuple[Presence, ...] = ("on_time", "late", "skipped", "away", "missing", "pending", "imported")
SEARCH_LIMIT = 200
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class CycleLine:
    """One row of the team's cycles: its state and how many sections have an answer."""

    cycle: Cycle
    state: CycleState
    answered: int
    sections: int


@dataclass(frozen=True)
class AnswerHistory:
    """One answer (a chat message, or an imported section) with every text it had."""

    update: StoredUpdate
    member_name: str
    revisions: tuple[StoredRevision, ...]


@dataclass(frozen=True)
class SectionHistory:
    key: str
    title: str
    state: str
    late: bool
    owners: tuple[str, ...]  # names
    answers: tuple[AnswerHistory, ...]


@dataclass(frozen=True)
class CyclePage:
    team: Team
    cycle: Cycle
    state: CycleState
    markdown: str
    summaries: tuple[SummaryRevision, ...]  # oldest first
    sections: tuple[SectionHistory, ...]
    unassigned: tuple[AnswerHistory, ...]  # answers whose owner has not picked a section yet


@dataclass(frozen=True)
class MemberLine:
    key: str
    name: str
    cells: tuple[Presence, ...]  # one per cycle of the Participation, in its order

    def count(self, presence: Presence) -> int:
        return sum(1 for c in self.cells if c == presence)

    @property
    def expected(self) -> int:
        """Cycles the member owed an answer: not skipped, away, still open or imported."""
        return self.count("on_time") + self.count("late") + self.count("missing")

    @property
    def rate(self) -> float | None:
        """Answered (on time or late) out of expected; None when nothing was expected."""
        return (self.count("on_time") + self.count("late")) / self.expected if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        return self.count("on_time") / self.expected if self.expected else None


@dataclass(frozen=True)
class Participation:
    team: Team
    cycles: tuple[Cycle, ...]  # oldest first
    members: tuple[MemberLine, ...]

    def per_cycle(self, presence: Presence) -> list[int]:
        """How many members were in `presence` in each cycle."""
        return [sum(1 for m in self.members if m.cells[i] == presence) for i in range(len(self.cycles))]


@dataclass(frozen=True)
class Hit:
    cycle_label: str
    section_title: str
    member_name: str
    update: StoredUpdate


class History:
    """The web view's reads for one service; nothing here writes."""

    def __init__(self, service: WeeklyService) -> None:
        self.service = service

    def _name(self, member: str) -> str:
        if member == IMPORT_MEMBER:
            return "(import)"
        found = self.service.team_file.members.get(member)
        return found.name if found else member

    # -- the team's cycles -------------------------------------------------------------------
    def team_cycles(self, team: Team) -> list[Cycle]:
        """Every stored cycle (opened or imported, merged ones too) and the open one, oldest first."""
        timeline = self.service.timeline(team)
        now = self.service.now()
        today = now.astimezone(self.service.team_file.tz(team)).date()
        stored = timeline.stored()
        lo = min([span.first for span, _ in stored[:1]] + [monday_of(today)])
        return [c for c in timeline.between(lo, monday_of(today))
                if c.stored_id is not None or c.state(now) == "open"]

    def cycles(self, team: Team) -> list[CycleLine]:
        """The team's cycles, newest first, with how many of its sections have an answer."""
        answered: dict[int, set[str]] = {}
        for mark in self.service.store.answer_marks(team_key=team.key):
            if mark.section_key:
                answered.setdefault(mark.cycle_id, set()).add(mark.section_key)
        keys = {s.key for s in team.sections}
        now = self.service.now()
        out = []
        for c in reversed(self.team_cycles(team)):
            got = answered.get(c.stored_id, set()) if c.stored_id is not None else set()
            out.append(CycleLine(c, c.state(now), len(got & keys), len(keys)))
        return out

    def cycle(self, team: Team, label: str) -> Cycle:
        """A cycle of the listing by label (a week inside a merged cycle names it); a UserError otherwise."""
        try:
            span = parse_span(label)
        except UserError:
            raise UserError("web_no_cycle", label=label[:40]) from None
        for c in self.team_cycles(team):
            if c.label == span.label or (span.weeks == 1 and c.first_monday <= span.first <= c.last_monday):
                return c
        raise UserError("web_no_cycle", label=span.label)

    # -- one cycle ---------------------------------------------------------------------------
    def report_markdown(self, team: Team, label: str) -> str:
        """The cycle's report as stored: owners' answers and its newest closing sections; nothing is drafted."""
        return self._report(team, self.cycle(team, label))[0]

    def _report(self, team: Team, cycle: Cycle) -> tuple[str, tuple[SectionText, ...], list[SummaryRevision]]:
        svc = self.service
        stored = svc.store.find_cycle(team_key=team.key, label=cycle.label) if cycle.stored_id is not None else None
        sections = svc.section_texts(team, stored, cycle)
        revisions = svc.store.summary_revisions(cycle_id=stored.id) if stored else []
        newest = _newest(revisions, imported_first=cycle.imported)
        summary = None if newest is None else Summary(list(newest.reflections), list(newest.next_week),
                                                      newest.source)  # type: ignore[arg-type]
        created: datetime | str = svc.now().astimezone(svc.team_file.tz(team))
        if stored is not None and stored.created_text and cycle.imported:
            created = stored.created_text
        markdown = render_report(cycle=cycle.label, created=created, sections=sections, summary=summary,
                                 language=svc.lang(team))
        return markdown, sections, revisions

    def cycle_page(self, team: Team, label: str) -> CyclePage:
        """The report, its closing sections' revisions and every section's answers with their revisions."""
        cycle = self.cycle(team, label)
        markdown, sections, revisions = self._report(team, cycle)
        history = self.service.store.update_history(cycle_id=cycle.stored_id) if cycle.stored_id is not None else []
        by_section: dict[str | None, list[AnswerHistory]] = {}
        for update, revs in history:
            by_section.setdefault(update.section_key, []).append(
                AnswerHistory(update, self._name(update.member_key), tuple(revs)))
        owners = {s.key: s.owners for s in team.sections}
        rows = []
        for sec in sections:
            answers = tuple(by_section.get(sec.key, ()))
            live = [a.update for a in answers if not a.update.deleted]
            rows.append(SectionHistory(sec.key, sec.title, sec.state, bool(live) and all(u.late for u in live),
                                       tuple(self._name(o) for o in owners.get(sec.key, ())), answers))
        return CyclePage(team, cycle, cycle.state(self.service.now()), markdown, tuple(revisions), tuple(rows),
                         tuple(by_section.get(None, ())))

    # -- participation -----------------------------------------------------------------------
    def participation(self, team: Team) -> Participation:
        """Every owner of the team × every cycle: on time, late, skipped, away, missing (or still open,
        or imported: an imported report does not say who wrote what)."""
        svc = self.service
        cycles = self.team_cycles(team)
        members = list(dict.fromkeys(o for s in team.sections for o in s.owners))
        mine: dict[tuple[int, str], list[bool]] = {}
        per_section: dict[tuple[int, str], list[bool]] = {}
        keys = {s.key for s in team.sections}
        for mark in svc.store.answer_marks(team_key=team.key):
            if mark.section_key is None or mark.section_key in keys:
                mine.setdefault((mark.cycle_id, mark.member_key), []).append(mark.late)
            if mark.section_key in keys:
                per_section.setdefault((mark.cycle_id, mark.section_key or ""), []).append(mark.late)
        skips = svc.store.skips_by_cycle(team_key=team.key)
        away = self._away_days()
        tz = svc.team_file.tz(team)
        now = svc.now()
        owned = {m: [s.key for s in team.sections if m in s.owners] for m in members}
        lines = []
        for member in members:
            cells: list[Presence] = []
            for c in cycles:
                cells.append(_presence(c, member, owned[member], mine, per_section, skips, away, tz, now))
            lines.append(MemberLine(member, self._name(member), tuple(cells)))
        return Participation(team, tuple(cycles), tuple(lines))

    def _away_days(self) -> dict[str, list[tuple[date, date]]]:
        """Every member's days away, the team file's and those said in chat: one read."""
        out: dict[str, list[tuple[date, date]]] = {k: list(m.away) for k, m in self.service.team_file.members.items()}
        for member, first, last in self.service.store.away():
            out.setdefault(member, []).append((first, last))
        return out

    # -- search ------------------------------------------------------------------------------
    def search(self, team: Team, query: str) -> list[Hit]:
        """The team's answers, in every stored cycle, containing `query` (any case), newest first."""
        words = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not words:
            return []
        labels = {rec.id: rec.label for _span, rec in self.service.timeline(team).stored()}
        titles = {s.key: s.title for s in self.service.store.sections(team_key=team.key)}
        titles.update({s.key: s.title for s in team.sections})
        return [Hit(labels.get(u.cycle_id, "?"), titles.get(u.section_key or "", "—"), self._name(u.member_key), u)
                for u in self.service.store.search_updates(team_key=team.key, text=words, limit=SEARCH_LIMIT)]


def _newest(revisions: Sequence[SummaryRevision], *, imported_first: bool) -> SummaryRevision | None:
    """The closing sections a report shows: an imported cycle's own, else the newest draft."""
    if imported_first:
        imported = [r for r in revisions if r.source == "imported"]
        if imported:
            return imported[-1]
    # the current one: made, or drafted again, last (as `report` shows it)
    return max(revisions, key=lambda r: r.current_at) if revisions else None


def _presence(cycle: Cycle, member: str, sections: Sequence[str], mine: dict[tuple[int, str], list[bool]],
              per_section: dict[tuple[int, str], list[bool]], skips: dict[int, set[str]],
              away: dict[str, list[tuple[date, date]]], tz: ZoneInfo, now: datetime) -> Presence:
    """A member in a cycle, as status counts it: by their own answers first, then by their sections (a
    section a co-owner answered is not missing)."""
    if cycle.imported:
        return "imported"
    cid = cycle.stored_id
    own = mine.get((cid, member)) if cid is not None else None
    if own:
        return "late" if all(own) else "on_time"
    if cid is not None and member in skips.get(cid, set()):
        return "skipped"
    day = cycle.deadline.astimezone(tz).date()
    if any(a <= day <= b for a, b in away.get(member, ())):
        return "away"
    covered = [per_section.get((cid, key)) for key in sections] if cid is not None else [None]
    if not all(covered):
        return "missing" if now >= cycle.deadline else "pending"
    return "late" if any(all(lates or ()) for lates in covered) else "on_time"

