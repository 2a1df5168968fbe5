"""The store's part for the web view (issue 14): whole-team history reads and the sign-in links.

`storage.repo.Store` inherits these. Each read is one query (or two) for a whole team or cycle, so a page
costs the same few queries whether the team has 5 cycles or 500.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.records import AnswerMark, StoredRevision, StoredUpdate
from storage.models import (
    CycleRow,
    RevisionRow,
    SkipRow,
    TeamRow,
    UpdateRow,
    WebLinkRow,
    WebSecretRow,
)
from storage.rows import stored_update


def _team_cycles(team_key: str):  # type: ignore[no-untyped-def]
    return select(CycleRow.id).join(TeamRow, TeamRow.id == CycleRow.team_id).where(TeamRow.key == team_key)


class WebRepo:
    """Mixed into `storage.repo.Store`, which gives it its session factory."""

    _sessions: sessionmaker[Session]

    def _tx(self) -> AbstractContextManager[Session]:  # Store's: a writing transaction, queued
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Session]:  # Store's: no SQLite write lock for a page load
        raise NotImplementedError

    # -- history -----------------------------------------------------------------------------
    def answer_marks(self, *, team_key: str) -> list[AnswerMark]:
        """Who answered which section of which of the team's cycles (deleted answers left out)."""
        with self._read() as s:
            rows = s.execute(
                select(UpdateRow.cycle_id, UpdateRow.section_key, UpdateRow.member_key, UpdateRow.late)
                .where(UpdateRow.cycle_id.in_(_team_cycles(team_key)), UpdateRow.deleted.is_(False))
            )
            return [AnswerMark(c, sec, m, bool(late)) for c, sec, m, late in rows]

    def skips_by_cycle(self, *, team_key: str) -> dict[int, set[str]]:
        with self._read() as s:
            out: dict[int, set[str]] = {}
            for cycle_id, member in s.execute(select(SkipRow.cycle_id, SkipRow.member_key)
                                              .where(SkipRow.cycle_id.in_(_team_cycles(team_key)))):
                out.setdefault(cycle_id, set()).add(member)
            return out

    def update_history(self, *, cycle_id: int) -> list[tuple[StoredUpdate, list[StoredRevision]]]:
        """Every answer of the cycle, deleted ones too, each with all its revisions: two queries."""
        with self._read() as s:
            updates = list(s.scalars(select(UpdateRow).where(UpdateRow.cycle_id == cycle_id)
                                     .order_by(UpdateRow.created_at, UpdateRow.id)))
            revisions: dict[int, list[StoredRevision]] = {}
            for r in s.scalars(select(RevisionRow)
                               .where(RevisionRow.update_id.in_(select(UpdateRow.id).where(UpdateRow.cycle_id == cycle_id)))
                               .order_by(RevisionRow.update_id, RevisionRow.number)):
                revisions.setdefault(r.update_id, []).append(StoredRevision(r.number, r.action, r.text, r.at))
            return [(stored_update(u), revisions.get(u.id, [])) for u in updates]

    def search_updates(self, *, team_key: str, text: str, limit: int) -> list[StoredUpdate]:
        """The team's current answers containing `text` (any case; % and _ are plain characters), newest first."""
        with self._read() as s:
            rows = s.scalars(
                select(UpdateRow)
                .where(UpdateRow.cycle_id.in_(_team_cycles(team_key)), UpdateRow.deleted.is_(False),
                       UpdateRow.text.icontains(text, autoescape=True))
                .order_by(UpdateRow.created_at.desc(), UpdateRow.id.desc()).limit(limit)
            )
            return [stored_update(r) for r in rows]

    # -- sign-in links -----------------------------------------------------------------------
    def put_web_link(self, *, token_hash: str, member_key: str, at: datetime, expires_at: datetime) -> None:
        """Keep a new link's hash; links that expired are forgotten on the way."""
        with self._tx() as s:
            s.execute(delete(WebLinkRow).where(WebLinkRow.expires_at < at))
            s.add(WebLinkRow(token_hash=token_hash, member_key=member_key, created_at=at, expires_at=expires_at))

    def take_web_link(self, *, token_hash: str, at: datetime) -> str | None:
        """The link's member if it is known and not expired; it is gone afterwards either way. One
        DELETE … RETURNING: of two processes opening the same link at once, exactly one gets it."""
        with self._tx() as s:
            row = s.execute(delete(WebLinkRow).where(WebLinkRow.token_hash == token_hash)
                            .returning(WebLinkRow.member_key, WebLinkRow.expires_at)).first()
        if row is None:
            return None
        member, expires_at = row
        if expires_at.tzinfo is None:  # SQLite keeps UTC without a zone
            expires_at = expires_at.replace(tzinfo=UTC)
        return member if at < expires_at else None

    def web_secret(self, *, name: str, candidate: str, at: datetime) -> str:
        """The stored secret `name`; `candidate` becomes it when there is none yet (the first process wins)."""
        with self._read() as s:
            found = s.scalar(select(WebSecretRow.value).where(WebSecretRow.name == name))
        if found is not None:
            return found
        try:
            with self._tx() as s:
                s.add(WebSecretRow(name=name, value=candidate, created_at=at))
        except IntegrityError:
            pass  # another process made it first: use theirs
        with self._read() as s:
            value = s.scalar(select(WebSecretRow.value).where(WebSecretRow.name == name))
        assert value is not None
        return value
