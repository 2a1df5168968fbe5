"""What is due at instant T: a pure function of the team file, the cycle and what is stored.

Prompts go to every owner once the cycle opens; a reminder goes to owners who have neither
answered nor skipped (nor are away on the deadline), only the latest one due (24h and 2h due together → only 2h); at the
deadline the leads hear who is missing. Nothing stale: a prompt only while its cycle takes
answers and the owner has not answered, a reminder only before the deadline, an escalation
only within ESCALATION_WINDOW after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.config import Section, Team
from bot.model import Cycle

Kind = Literal["prompt", "reminder", "escalation"]
# past this, telling the leads who was missing is news from last week, not an escalation
ESCALATION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Due:
    """One message that should exist; `key` is what makes it exactly-once."""

    team: str
    cycle: str
    member: str
    kind: Kind
    offset: str  # the reminder's offset as written ("2h"), else ""
    sections: tuple[str, ...]  # the section keys it is about

    @property
    def key(self) -> str:
        return f"{self.team}|{self.cycle}|{self.member}|{self.kind}|{self.offset}"


def owners_sections(team: Team) -> dict[str, list[Section]]:
    """Each owner's sections, in the team file's order."""
    out: dict[str, list[Section]] = {}
    for sec in team.sections:
        for owner in sec.owners:
            out.setdefault(owner, []).append(sec)
    return out


def answered_sections(updates: Sequence[tuple[str, str | None]]) -> dict[str, set[str]]:
    """member → section keys they wrote something for, from (member, section_key) pairs."""
    out: dict[str, set[str]] = {}
    for member, section in updates:
        if section:
            out.setdefault(member, set()).add(section)
    return out


def due_at(
    team: Team, cycle: Cycle, at: datetime, *, answered: Mapping[str, Set[str]], skipped: Set[str],
    away: Set[str] = frozenset(),
) -> list[Due]:
    """Everything for `team` that should have been sent by `at` in `cycle` and still makes sense.

    A member away on the deadline counts as having skipped: no prompt, no reminder, not missing."""
    if at < cycle.opens_at or at >= cycle.next_opens_at:
        return []
    skipped = frozenset(skipped) | frozenset(away)
    out: list[Due] = []
    owners = owners_sections(team)

    def waiting(member: str) -> list[Section]:
        """The member's sections that nobody has answered yet, unless the member skipped the cycle."""
        if member in skipped:
            return []
        return [s for s in owners[member] if not _section_done(s, answered, skipped)]

    if at < cycle.deadline:
        for member, secs in owners.items():
            if waiting(member):
                out.append(Due(team.key, cycle.label, member, "prompt", "", tuple(s.key for s in secs)))
        passed = [(label, when) for label, when in cycle.reminders if when <= at]
        if passed:
            latest = max(passed, key=lambda r: r[1])[0]
            for member in owners:
                left = waiting(member)
                if left:
                    out.append(Due(team.key, cycle.label, member, "reminder", latest, tuple(s.key for s in left)))
    elif at < cycle.deadline + ESCALATION_WINDOW:
        missing = [s.key for s in team.sections if s.owners and not _section_done(s, answered, skipped)]
        if missing:
            for lead in team.leads:
                out.append(Due(team.key, cycle.label, lead, "escalation", "", tuple(missing)))
    return out


def _section_done(section: Section, answered: Mapping[str, Set[str]], skipped: Set[str]) -> bool:
    """A section is done when any owner wrote for it, or every owner skipped."""
    if any(section.key in answered.get(o, set()) for o in section.owners):
        return True
    return all(o in skipped for o in section.owners)
