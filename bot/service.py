"""The use-cases, platform-neutral: record, edit, delete and skip answers; status; compile; import.

Every platform edge (Slack, Feishu, the console) calls these; nothing here imports an SDK.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.config import Section, Team, TeamFile
from bot.cycles import CycleCalendar
from bot.errors import UserError
from bot.model import (
    CycleTimes,
    ParsedReport,
    SectionState,
    SectionText,
    Summary,
    SummaryItem,
    SummaryRequest,
)
from bot.parse import parse_report
from bot.render import render_report
from storage.repo import Store, StoredCycle, StoredUpdate

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 20000
_LABEL = re.compile(r"\d{4}-W\d{2}(&(\d{4}-)?W\d{2})*")
IMPORT_MEMBER = "(import)"
Clock = Callable[[], datetime]


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
    cycle: CycleTimes
    sections: tuple[SectionStatus, ...]
    skipped: frozenset[str] = frozenset()

    @property
    def missing_owners(self) -> list[str]:
        """Owners of missing sections who have not skipped the cycle, in section order."""
        seen: list[str] = []
        for s in self.sections:
            if s.state == "missing":
                seen.extend(o for o in s.owners if o not in seen and o not in self.skipped)
        return seen

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team.key,
            "cycle": self.cycle.label,
            "opens_at": self.cycle.opens_at.isoformat(),
            "deadline": self.cycle.deadline.isoformat(),
            "sections": [
                {"key": s.key, "title": s.title, "owners": list(s.owners), "state": s.state} for s in self.sections
            ],
        }


@dataclass(frozen=True)
class Report:
    team: Team
    cycle: str
    sections: tuple[SectionText, ...]
    summary: Summary | None
    markdown: str

    @property
    def summary_source(self) -> str:
        return self.summary.source if self.summary else "none"

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
    return re.sub(r"[\s【】\[\]]+", "", text).lower()


class WeeklyService:
    """The use-cases over one team file and one store, reading the time from `clock`."""

    def __init__(
        self, team_file: TeamFile, store: Store, *, clock: Clock = utcnow,
        summarizer: SummarizerLike | None = None,
    ) -> None:
        self.team_file = team_file
        self.store = store
        self.clock = clock
        self.summarizer = summarizer
        self._calendars: dict[str, CycleCalendar] = {}
        self._synced = False

    # -- set-up ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Write the team file's teams, sections and members to the database (idempotent)."""
        if self._synced:
            return
        self.store.sync_members([
            (k, m.name, m.slack, m.feishu, m.email) for k, m in self.team_file.members.items()
        ])
        for team in self.team_file.teams:
            self.store.sync_team(key=team.key, title=team.title,
                                 sections=[(s.key, s.title, s.style) for s in team.sections])
        self._synced = True

    def team(self, key: str | None) -> Team:
        return self.team_file.team(key)

    def lang(self, team: Team) -> Literal["zh", "en"]:
        return self.team_file.lang(team)

    def calendar(self, team: Team) -> CycleCalendar:
        cal = self._calendars.get(team.key)
        if cal is None:
            cal = self._calendars[team.key] = CycleCalendar(team.schedule, self.team_file.tz(team))
        return cal

    def now(self) -> datetime:
        return self.clock()

    # -- cycles ------------------------------------------------------------------------------
    def current_cycle(self, team: Team, at: datetime | None = None) -> CycleTimes:
        """The newest opened cycle, or a UserError naming when the first one opens."""
        at = at or self.now()
        cycle = self.calendar(team).cycle_at(at)
        if cycle is None:
            upcoming = self.calendar(team).cycles_between(at, at.replace(year=at.year + 2))
            opens = upcoming[0].opens_at.strftime("%Y-%m-%d %H:%M") if upcoming else "?"
            raise UserError(f"{team.key}: no cycle has opened yet (the first opens {opens})")
        return cycle

    def resolve_cycle(self, team: Team, label: str | None) -> CycleTimes:
        return self.current_cycle(team) if not label else self.calendar(team).by_label(label)

    def stored_cycle(self, team: Team, cycle: CycleTimes) -> StoredCycle:
        self.sync()
        return self.store.ensure_cycle(team_key=team.key, label=cycle.label, opens_at=cycle.opens_at,
                                       deadline=cycle.deadline)

    # -- owners and their answers ------------------------------------------------------------
    def owned_sections(self, member: str) -> list[tuple[Team, Section]]:
        return [(t, s) for t in self.team_file.teams for s in t.sections if member in s.owners]

    def _pick_section(self, text: str, owned: list[tuple[Team, Section]]) -> tuple[tuple[Team, Section] | None, str]:
        """A leading `【标题】`, `[Title]` or section key chooses the section; returns (choice, rest of text)."""
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
        return None, text

    def check_text(self, text: str) -> str:
        """The text worth storing, or a UserError ("empty", "too_long")."""
        body = _clean(text or "").strip("\n").rstrip()
        if not body.strip():
            raise UserError("empty")
        if len(body) > MAX_MESSAGE_CHARS:
            raise UserError("too_long")
        return body

    def record(
        self, member: str, text: str, *, platform: str, message_id: str | None,
    ) -> Recorded | NeedsSection:
        """Store an owner's message as (part of) their update for the open cycle."""
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
        stored = self.stored_cycle(team, cycle)
        now = self.now()
        update, created = self.store.add_update(
            cycle_id=stored.id, section_key=choice[1].key if choice else None, member_key=member,
            platform=platform, message_id=message_id, text=body, at=now, late=now > cycle.deadline,
        )
        if created:
            self.store.clear_skip(cycle_id=stored.id, member_key=member)
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
            raise UserError(f"unknown section {key!r}")
        return default, found

    def assign(self, member: str, update_id: int, section_key: str) -> Recorded:
        """The owner's pick for a parked update; moves it to that section's team cycle if needed."""
        update = self.store.get_update(update_id=update_id)
        if update is None or update.member_key != member:
            raise UserError("That update is not yours or no longer exists.")
        owned = self.owned_sections(member)
        team, section = self._section_of(section_key, owned, owned[0][0] if owned else self.team_file.teams[0])
        if member not in section.owners:
            raise UserError("not_owner")
        cycle = self.current_cycle(team)
        stored = self.stored_cycle(team, cycle)
        # parked in the first team's cycle, it moves (with its message id, so edits follow) to the chosen one
        assigned = self.store.assign_section(update_id=update_id, section_key=section.key, cycle_id=stored.id,
                                             at=self.now())
        assert assigned is not None
        return Recorded(update=assigned, team=team, section=section, cycle=cycle.label, created=False)

    def edit(self, member: str, *, platform: str, message_id: str, text: str) -> StoredUpdate | None:
        """An edited chat message replaces its update's text (the earlier one stays a revision)."""
        body = self.check_text(text)
        existing = self.store.update_by_message(platform=platform, message_id=message_id)
        if existing is None or existing.member_key != member:
            return None
        owned = self.owned_sections(member)
        choice, rest = self._pick_section(body, owned)
        if choice is not None and choice[1].key == existing.section_key:
            body = rest.strip("\n").rstrip() or body
        return self.store.edit_update(platform=platform, message_id=message_id, text=body, at=self.now())

    def delete(self, member: str, *, platform: str, message_id: str) -> StoredUpdate | None:
        existing = self.store.update_by_message(platform=platform, message_id=message_id)
        if existing is None or existing.member_key != member:
            return None
        return self.store.delete_update(platform=platform, message_id=message_id, at=self.now())

    def skip(self, member: str) -> list[tuple[Team, CycleTimes, list[Section]]]:
        """Skip the open cycle for every team the member owns sections in."""
        owned = self.owned_sections(member)
        if not owned:
            raise UserError("not_owner")
        out = []
        for team in {t.key: t for t, _ in owned}.values():
            cycle = self.current_cycle(team)
            stored = self.stored_cycle(team, cycle)
            self.store.set_skip(cycle_id=stored.id, member_key=member, at=self.now())
            out.append((team, cycle, [s for t, s in owned if t.key == team.key]))
        return out

    def draft(self, member: str) -> list[tuple[Team, CycleTimes, list[tuple[str, str]]]]:
        """The member's current text per section, per team: [(team, cycle, [(section title, text)])]."""
        out = []
        owned = self.owned_sections(member)
        for team in {t.key: t for t, _ in owned}.values():
            cycle = self.current_cycle(team)
            stored = self.stored_cycle(team, cycle)
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
        updates = self.store.updates(cycle_id=stored.id)
        skips = self.store.skips(cycle_id=stored.id)
        rows = []
        for sec in team.sections:
            mine = [u for u in updates if u.section_key == sec.key]
            state: SectionState
            if mine:
                state = "submitted"
            elif sec.owners and all(o in skips for o in sec.owners):
                state = "skipped"
            else:
                state = "missing"
            rows.append(SectionStatus(sec.key, sec.title, sec.owners, state, late=bool(mine) and all(u.late for u in mine)))
        return Status(team=team, cycle=cycle, sections=tuple(rows), skipped=frozenset(skips))

    def section_texts(self, team: Team, stored: StoredCycle) -> tuple[SectionText, ...]:
        """The cycle's sections in the team file's order, then extra (imported) ones that have text."""
        updates = self.store.updates(cycle_id=stored.id)
        skips = self.store.skips(cycle_id=stored.id)
        by_section: dict[str, list[StoredUpdate]] = {}
        for u in updates:
            if u.section_key:
                by_section.setdefault(u.section_key, []).append(u)
        out: list[SectionText] = []
        for sec in team.sections:
            texts = [u.text for u in by_section.get(sec.key, [])]
            state: SectionState = "submitted" if texts else (
                "skipped" if sec.owners and all(o in skips for o in sec.owners) else "missing")
            out.append(SectionText(sec.key, sec.title, "\n".join(texts), state, sec.style))
        known = {s.key for s in team.sections}
        for extra in self.store.sections(team_key=team.key):
            if extra.key not in known and by_section.get(extra.key):
                text = "\n".join(u.text for u in by_section[extra.key])
                out.append(SectionText(extra.key, extra.title, text, "submitted", extra.style))  # type: ignore[arg-type]
        return tuple(out)

    def previous_goals(self, team: Team, cycle: CycleTimes) -> tuple[SummaryItem, ...]:
        """Last cycle's 下周工作及目标, from its stored (imported or generated) closing sections."""
        labels = [lab for lab in self.store.cycle_labels(team_key=team.key) if lab < cycle.label]
        for label in sorted(labels, reverse=True):
            prev = self.store.find_cycle(team_key=team.key, label=label)
            if prev is None:
                continue
            # what people wrote wins over what a model drafted, and a model over the offline rules
            for sources in (("imported",), ("llm",), ("offline",)):
                summary = self.store.latest_summary(cycle_id=prev.id, sources=sources)
                if summary is not None:
                    return tuple(summary.next_week)
            return ()
        return ()

    def report(self, team: Team, label: str | None = None, *, summarize: bool | None = None) -> Report:
        """Compile the report; `summarize` None means: the stored imported closing sections, else summarize."""
        cycle = self.resolve_cycle(team, label)
        stored = self.stored_cycle(team, cycle)
        sections = self.section_texts(team, stored)
        summary: Summary | None = None
        if summarize is None and stored.imported:
            summary = self.store.latest_summary(cycle_id=stored.id, sources=("imported",))
        if summary is None and summarize is not False:
            summary = self.summarize(team, cycle, stored, sections)
        created: datetime | str = self.now().astimezone(self.team_file.tz(team))
        if stored.created_text and all(u.platform == "import" for u in self.store.updates(cycle_id=stored.id)):
            created = stored.created_text  # the imported report as it was, unless people wrote since
        markdown = render_report(cycle=cycle.label, created=created, sections=sections, summary=summary,
                                 language=self.lang(team))
        return Report(team=team, cycle=cycle.label, sections=sections, summary=summary, markdown=markdown)

    def summarize(self, team: Team, cycle: CycleTimes, stored: StoredCycle,
                  sections: Sequence[SectionText]) -> Summary:
        request = SummaryRequest(
            team_title=team.title, cycle=cycle.label, language=self.lang(team), sections=tuple(sections),
            last_goals=self.previous_goals(team, cycle),
        )
        if self.summarizer is None:
            from bot.summary_offline import summarize_offline

            summary = summarize_offline(request)
        else:
            summary = self.summarizer.summarize(request, cycle_id=stored.id)
        if summary.source == "offline":
            # kept as this cycle's newest closing sections, so the next cycle's prompts know the plan
            digest = hashlib.sha256(repr((request.sections, request.last_goals)).encode()).hexdigest()[:32]
            self.store.put_summary(cycle_id=stored.id, cache_key=f"offline:{stored.id}:{digest}", summary=summary,
                                   at=self.now())
        return summary

    # -- import ------------------------------------------------------------------------------
    def import_reports(self, paths: Sequence[str], *, team: Team, label: str | None = None) -> ImportResult:
        """Load past reports as history; every file is checked before anything is written."""
        self.sync()
        if label is not None:
            if not _LABEL.fullmatch(label):
                raise UserError(f"--cycle {label!r} is not a cycle label (like 2024-W40 or 2024-W38&W39)")
            if len(paths) > 1:
                raise UserError("--cycle names the cycle of one report: import several files without it")
        parsed = []
        seen: dict[str, str] = {}
        for path in paths:
            report = _read_report(path)
            cycle_label = label or report.cycle
            if not cycle_label:
                raise UserError(f"{path}: no cycle in its title (like '# 2024-W40'): pass --cycle")
            if cycle_label in seen:
                raise UserError(f"{path}: {cycle_label} is also the cycle of {seen[cycle_label]}: "
                                "import one report per cycle")
            seen[cycle_label] = path
            times = self._times_for(team, cycle_label, path)
            parsed.append((path, cycle_label, times, report))
        result = ImportResult()
        titles = {_norm_title(s.title): s for s in team.sections} | {s.key.lower(): s for s in team.sections}
        now = self.now()
        for path, cycle_label, times, report in parsed:
            stored = self.store.ensure_cycle(
                team_key=team.key, label=cycle_label, opens_at=times.opens_at if times else None,
                deadline=times.deadline if times else None, imported=True, created_text=report.created,
            )
            key_of_title: dict[str, str] = {}
            for psec in report.sections:
                sec = titles.get(_norm_title(psec.title))
                if sec is not None:
                    key = sec.key
                else:
                    key = "extra_" + hashlib.sha1(_norm_title(psec.title).encode()).hexdigest()[:8]
                    self.store.add_extra_section(team_key=team.key, key=key, title=psec.title, style=psec.style)
                    result.warnings.append(
                        f"{path}: section 【{psec.title}】 is not in the team file: kept as an extra section")
                key_of_title[_norm_title(psec.title)] = key
                if psec.content.strip():
                    self.store.put_imported(
                        cycle_id=stored.id, section_key=key, member_key=IMPORT_MEMBER, text=psec.content, at=now,
                        message_id=f"{team.key}/{cycle_label}/{key}",
                    )
                    result.sections += 1
            if report.reflections or report.next_week:
                self.store.put_summary(
                    cycle_id=stored.id, cache_key=f"imported:{team.key}:{cycle_label}",
                    summary=Summary(reflections=_keyed(report.reflections, key_of_title),
                                    next_week=_keyed(report.next_week, key_of_title), source="imported"),
                    at=now,
                )
            result.cycles.append(cycle_label)
        return result

    def _times_for(self, team: Team, label: str, path: str) -> CycleTimes | None:
        """The schedule's times for an imported label; history from before the schedule has none."""
        if not _LABEL.fullmatch(label):
            raise UserError(f"{path}: {label!r} is not a cycle label (like 2024-W40 or 2024-W38&W39)")
        try:
            return self.calendar(team).by_label(label)
        except UserError:
            return None


def _keyed(items: Sequence[SummaryItem], key_of_title: dict[str, str]) -> list[SummaryItem]:
    """Imported closing items name their sources by title; store them by section key."""
    return [
        SummaryItem(i.text, tuple(key_of_title[_norm_title(s)] for s in i.sources if _norm_title(s) in key_of_title))
        for i in items
    ]


def _read_report(path: str) -> ParsedReport:
    """A report file, parsed, or one clear line saying why not."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a report file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if not raw.strip():
        raise UserError(f"{path}: the file is empty")
    if b"\x00" in raw:
        raise UserError(f"{path}: a binary file, not a Markdown report")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (save the report as UTF-8 Markdown)") from None
    try:
        return parse_report(text)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
