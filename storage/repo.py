"""The repository: every read and write of weekly-bot's state, keyword-only, returning plain values."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import AlreadyHandled, BatchMiss
from bot.model import Summary, SummaryItem
from bot.records import (
    ImportedReport,
    ImportedSection,
    Outgoing,
    Snapshot,
    StoredCycle,
    StoredRevision,
    StoredSection,
    StoredUpdate,
    SummaryRevision,
)
from storage.db import LOCK_WAIT_MS, READ, turns_for
from storage.models import (
    AwayRow,
    CycleRow,
    DocumentRow,
    IdentityRow,
    MemberRow,
    OutgoingRow,
    ProcessedEventRow,
    RevisionRow,
    SectionRow,
    SkipRow,
    SnapshotRow,
    SummaryRow,
    TeamRow,
    UpdateRow,
    UTCDateTime,
)
from storage.rows import stored_update, summary_items
from storage.web import WebRepo


def _items(items: Sequence[SummaryItem]) -> list[dict[str, Any]]:
    return [{"text": i.text, "sources": list(i.sources)} for i in items]




logger = logging.getLogger(__name__)


class _Unknown(Exception):
    """Rolls back a change's transaction when its message is not stored."""


class WriteQueueTimeout(Exception):
    """This process's writers stayed queued longer than a request may wait (the database is held)."""


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(engine: Engine) -> threading.RLock | None:
    """One lock per SQLite file and process: this process's writers queue here, in memory, instead of
    sleeping in SQLite's busy back-off while each holds a pooled connection. Other processes still meet
    SQLite's lock (busy_timeout). PostgreSQL locks rows, not the database: no queue."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(engine.url.database), threading.RLock())


_EVENTS = cast(Table, ProcessedEventRow.__table__)
_UPDATES = cast(Table, UpdateRow.__table__)
_REVISIONS = cast(Table, RevisionRow.__table__)
_SKIPS = cast(Table, SkipRow.__table__)


class _Raw:
    """A Core statement compiled once for one dialect and run on the DBAPI cursor of the caller's
    connection, its parameters put through the columns' own bind processors (UTCDateTime's included):
    the rows are those SQLAlchemy would write, without its per-execution work (a third of a DM's ack)."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        # psycopg reads a result whole, so one cursor per connection serves every statement, and saves
        # the 15–20 µs of a fresh cursor's first execute per DM; sqlite3's keeps its statement open until
        # the next execute, so it gets a fresh one each time
        self.reuse = dialect.name == "postgresql"
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order: list[str] | None = list(compiled.positiontup) if compiled.positiontup else None
        self.process: list[tuple[str, Callable[[Any], Any]]] = []
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.process.append((name, proc))

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        values = dict(params)
        for name, proc in self.process:
            values[name] = proc(values[name])
        cursor = self.cursor(conn) if self.reuse else conn.connection.cursor()
        cursor.execute(self.sql, [values[k] for k in self.order] if self.order is not None else values)
        return cursor

    @staticmethod
    def cursor(conn: Connection) -> Any:
        """The cursor kept in the pooled connection's `info`, which SQLAlchemy empties when it reconnects."""
        info = conn.connection.info
        cursor = info.get("raw_cursor")
        if cursor is None:
            cursor = info["raw_cursor"] = conn.connection.cursor()
        return cursor


class _Batch:
    """The answers `add_update` took to be new in a `Store.together(batch=True)` transaction (PostgreSQL),
    sent together, in one statement, by `send`."""

    def __init__(self, stmt: _NewAnswers) -> None:
        self.stmt = stmt
        self.answers: list[tuple[dict[str, Any], StoredUpdate]] = []  # (its parameters, the answer returned)
        self.missed = False  # one was not new (or sending failed): the transaction must not commit

    @property
    def waiting(self) -> bool:
        """Whether the transaction's next statement must first `send` (answers to send, or a miss to raise)."""
        return bool(self.answers) or self.missed

    def send(self, conn: Connection) -> None:
        """Store the answers, each returned answer given its stored id; BatchMiss if one was not new."""
        if self.missed:  # a caller swallowed the BatchMiss: the transaction must not commit
            raise BatchMiss("an answer taken to be new was not")
        if not self.answers:
            return
        answers, self.answers = self.answers, []
        self.missed = True  # until every answer is known stored (a database error included)
        marked, ids = self.stmt.run(conn, [params for params, _ in answers])
        if marked != len(answers) or len(ids) != len(answers):  # a redelivery, or a message stored before
            raise BatchMiss(f"of {len(answers)} answers taken to be new, an event was marked or a message stored "
                            "before")
        for params, answer in answers:
            object.__setattr__(answer, "id", ids[params["message_id"]])  # (frozen for its readers; it had none till now)
        self.missed = False


class _NewAnswers:
    """PostgreSQL: answers stored in one statement (data-modifying CTEs), their values in one JSON parameter:
    each one's event marked, the answer added if its event was not marked before and its message not stored
    before, with its first revision, and the member's skip taken back where asked. One answer on the DM ack
    path (`add_update`), a group's in a batch (`_Batch`): one round trip either way. JSON, not a parameter
    per column: psycopg dumps a list element by element in Python, `json.dumps` at once; and one statement
    for a group, not one each in a pipeline, which psycopg sends, waits for and reads on its own (16 answers
    and the commit cost the group thread 0.9 ms of CPU in a pipeline, 0.6 ms in one statement; issue 13)."""

    SQL = """
WITH input AS (
    SELECT * FROM json_to_recordset(%(answers)s::json)
        AS i(platform varchar, event_id varchar, cycle_id integer, section_key varchar, member_key varchar,
             message_id varchar, text text, late boolean, changed_ts double precision, at timestamptz,
             unskip boolean)
), marked AS (
    INSERT INTO processed_events (platform, event_id, at)
    SELECT platform, event_id, at FROM input
    ON CONFLICT (platform, event_id) DO NOTHING
    RETURNING platform, event_id
), added AS (
    INSERT INTO updates (cycle_id, section_key, member_key, platform, message_id, text, deleted, late,
                         created_at, updated_at, changed_ts)
    SELECT i.cycle_id, i.section_key, i.member_key, i.platform, i.message_id, i.text, false, i.late, i.at, i.at,
           i.changed_ts
    FROM input i JOIN marked USING (platform, event_id)
    ON CONFLICT (platform, message_id) DO NOTHING
    RETURNING id, message_id, text, created_at
), revised AS (
    INSERT INTO update_revisions (update_id, number, action, text, at)
    SELECT id, 1, 'create', text, created_at FROM added
), unskipped AS (
    DELETE FROM skips USING input i, added a
    WHERE a.message_id = i.message_id AND i.unskip AND skips.cycle_id = i.cycle_id
      AND skips.member_key = i.member_key
)
SELECT (SELECT count(*) FROM marked), (SELECT json_object_agg(message_id, id) FROM added)"""
    COLUMNS = ("platform", "event_id", "cycle_id", "section_key", "member_key", "message_id", "text", "late",
               "changed_ts", "unskip")

    def __init__(self, dialect: Any) -> None:
        self._at = partial(UTCDateTime().process_bind_param, dialect=dialect)  # (an aware time, in UTC)

    def run(self, conn: Connection, answers: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, int]]:
        """Store each answer (`add_update`'s values, its event id and `unskip`): how many of their events were
        marked (not marked before), and each added answer's id by its message (one not added: its event was
        marked before, or its message stored before, in the database or earlier among these)."""
        rows = [{**{c: a[c] for c in self.COLUMNS}, "at": cast(datetime, self._at(a["at"])).isoformat()}
                for a in answers]
        cursor = _Raw.cursor(conn)
        cursor.execute(self.SQL, {"answers": json.dumps(rows, ensure_ascii=False)})
        marked, added = cursor.fetchone()
        return int(marked), {message_id: int(new_id) for message_id, new_id in (added or {}).items()}


# an answer's columns, each a bind parameter of its own name in the DM ack path's statements
_ANSWER_COLUMNS = ("cycle_id", "section_key", "member_key", "platform", "message_id", "text", "deleted", "late",
                   "created_at", "updated_at", "changed_ts")


def _mark_event(dialect_insert: Callable[[Table], Any]) -> Any:
    """Mark (platform, event_id) handled; the new row's id, none when it was marked before."""
    return (dialect_insert(_EVENTS).values(platform=bindparam("platform"), event_id=bindparam("event_id"),
                                           at=bindparam("at", type_=_EVENTS.c.at.type))
            .on_conflict_do_nothing(index_elements=["platform", "event_id"]).returning(_EVENTS.c.id))


class _HotStatements:
    """The statements of the DM ack path, compiled once per store (see _Raw)."""

    def __init__(self, dialect_insert: Callable[[Table], Any], dialect: Any) -> None:
        self.mark_in_session = _mark_event(dialect_insert)  # the same, for an ORM session's transaction
        self.mark = _Raw(self.mark_in_session, dialect)
        values = {c: bindparam(c, type_=_UPDATES.c[c].type) for c in _ANSWER_COLUMNS}
        self.add = _Raw(insert(_UPDATES).values(**values).returning(_UPDATES.c.id), dialect)
        self.add_once = _Raw(dialect_insert(_UPDATES).values(**values).on_conflict_do_nothing(
            index_elements=["platform", "message_id"]).returning(_UPDATES.c.id), dialect)
        self.by_message = select(_UPDATES).where(_UPDATES.c.platform == bindparam("platform"),
                                                 _UPDATES.c.message_id == bindparam("message_id"))
        self.first_revision = _Raw(insert(_REVISIONS).values(
            update_id=bindparam("update_id"), number=bindparam("number"), action=bindparam("action"),
            text=bindparam("text"), at=bindparam("at", type_=_REVISIONS.c.at.type)), dialect)
        self.unskip = _Raw(delete(_SKIPS).where(_SKIPS.c.cycle_id == bindparam("cycle_id"),
                                                _SKIPS.c.member_key == bindparam("member_key")), dialect)
        self.new = _NewAnswers(dialect) if dialect.name == "postgresql" else None  # the four above in one


class Store(WebRepo):
    """All persistence; one short transaction per call, safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writers = _write_lock(engine)
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._q = _HotStatements(self._insert, engine.dialect)
        # .conn: the transaction `together` holds on this thread; .batch: its answers not sent yet (see
        # `together`), None when each is stored as it comes
        self._together = threading.local()
        self.turns = turns_for(engine)  # background work's transactions take turns (bot.lanes)

    @contextmanager
    def _queued(self) -> Iterator[None]:
        """This process's turn to write (SQLite: writers queue here rather than in SQLite's busy back-off)."""
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=LOCK_WAIT_MS / 1000):
            raise WriteQueueTimeout(f"no turn to write within {LOCK_WAIT_MS} ms")
        try:
            yield
        finally:
            self._writers.release()

    @contextmanager
    def together(self, batch: bool = False) -> Iterator[None]:
        """Every call on this thread, until the block ends, in one transaction: an ORM call's writes in a
        savepoint of it (a call that fails takes back its own writes only; `add_update` raises only before it
        writes), its reads seeing the calls before it, and one commit for all at the end, or none if the block raises. Group commit for a burst
        of chat events: one BEGIN, one COMMIT (one fsync on PostgreSQL) and one turn in the write queue.

        `batch` (PostgreSQL; for a group of several events): `add_update` takes each new answer to be new —
        its event not marked before, its message not stored before, as nearly always — and answers at once;
        the answers go to the database together, in one round trip, before the transaction's next other
        statement or its commit. If one was not new after all (a redelivery), the call that sent them, or
        the commit, raises BatchMiss and the whole transaction is rolled back: to be run again without
        `batch`, where each answer is stored and checked before its call returns."""
        if getattr(self._together, "conn", None) is not None:
            yield
            return
        with self.turns(), self._queued(), self.engine.begin() as conn:
            self._together.conn = conn
            pending = self._together.batch = _Batch(self._q.new) if batch and self._q.new else None
            try:
                yield
                if pending is not None:
                    pending.send(conn)  # before the commit
            finally:
                self._together.conn = self._together.batch = None

    def _held(self) -> Connection | None:
        """The transaction `together` holds on this thread, its answers waiting in a batch sent first (so
        every statement sees the answers before it); None outside `together`."""
        conn: Connection | None = getattr(self._together, "conn", None)
        pending: _Batch | None = getattr(self._together, "batch", None)
        if conn is not None and pending is not None and pending.waiting:
            pending.send(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        held = self._held()
        if held is not None:
            with self._sessions(bind=held, join_transaction_mode="create_savepoint") as session, session.begin():
                yield session
            return
        with self.turns(), self._queued(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A writing transaction on a bare connection (Core statements only), queued like `_tx`."""
        held = self._held()
        if held is not None:  # no savepoint: its one caller (add_update) raises only before it writes
            yield held
            return
        with self.turns(), self._queued(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it takes no write lock, so it never waits behind writers."""
        held = self._held()
        if held is not None:  # inside `together`: see what the calls before this one wrote
            with self._sessions(bind=held, join_transaction_mode="rollback_only") as session:
                yield session
            return
        with self.turns(), self._sessions() as session:
            session.connection(execution_options=READ)
            yield session

    def ping(self) -> bool:
        """True when the database answers `SELECT 1`."""
        try:
            with self.turns(), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError as e:
            logger.warning("the database does not answer (%s)", type(e).__name__)
            return False

    # -- teams, sections, members ------------------------------------------------------------
    def sync_team(self, *, key: str, title: str, sections: Sequence[tuple[str, str, str]]) -> None:
        """Make the database's team and sections (key, title, style) match the team file."""
        for attempt in range(3):
            try:
                with self._tx() as s:
                    team = s.scalar(select(TeamRow).where(TeamRow.key == key))
                    if team is None:
                        team = TeamRow(key=key, title=title)
                        s.add(team)
                        s.flush()
                    team.title = title
                    known = {r.key: r for r in s.scalars(select(SectionRow).where(SectionRow.team_id == team.id))}
                    for skey, stitle, style in sections:
                        row = known.get(skey)
                        if row is None:
                            s.add(SectionRow(team_id=team.id, key=skey, title=stitle, style=style, extra=False))
                        else:
                            row.title, row.style, row.extra = stitle, style, False
                return
            except IntegrityError:
                if attempt == 2:  # another process syncs the same team at once; its result is ours
                    raise

    def sync_members(self, members: Sequence[tuple[str, str, str | None, Mapping[str, str]]]) -> None:
        """Members as (key, name, email, {platform: id}); a team file's id replaces a cached one, an id
        found by email stays until the file names one."""
        for attempt in range(3):
            try:
                with self._tx() as s:
                    known = {r.key: r for r in s.scalars(select(MemberRow))}
                    ids = {(r.member_key, r.platform): r for r in s.scalars(select(IdentityRow))}
                    for key, name, email, platform_ids in members:
                        row = known.get(key)
                        if row is None:
                            s.add(MemberRow(key=key, name=name, email=email))
                        else:
                            row.name, row.email = name, email
                        for platform, user_id in platform_ids.items():
                            found = ids.get((key, platform))
                            if found is None:
                                s.add(IdentityRow(member_key=key, platform=platform, platform_id=user_id))
                            elif found.platform_id != user_id:
                                found.platform_id = user_id
                return
            except IntegrityError:
                if attempt == 2:  # another process syncs the same members at once; its result is ours
                    raise

    def set_member_platform_id(self, *, member_key: str, platform: str, user_id: str) -> None:
        """Keep an id resolved from the member's email."""
        for _ in range(3):
            try:
                with self._tx() as s:
                    row = s.scalar(select(IdentityRow).where(IdentityRow.member_key == member_key,
                                                             IdentityRow.platform == platform))
                    if row is None:
                        s.add(IdentityRow(member_key=member_key, platform=platform, platform_id=user_id))
                    else:
                        row.platform_id = user_id
                return
            except IntegrityError:
                continue  # a concurrent writer stored it first: try again as an update

    def member_platform_ids(self, *, platform: str) -> dict[str, str]:
        """member key → user id on `platform`, as stored."""
        with self._read() as s:
            rows = s.execute(select(IdentityRow.member_key, IdentityRow.platform_id)
                             .where(IdentityRow.platform == platform))
            return {k: v for k, v in rows if v}

    def sections(self, *, team_key: str) -> list[StoredSection]:
        with self._read() as s:
            rows = s.scalars(
                select(SectionRow).join(TeamRow, TeamRow.id == SectionRow.team_id)
                .where(TeamRow.key == team_key).order_by(SectionRow.id)
            )
            return [StoredSection(r.key, r.title, r.style, r.extra) for r in rows]

    # -- cycles ------------------------------------------------------------------------------
    def ensure_cycle(
        self, *, team_key: str, label: str, opens_at: datetime | None, deadline: datetime | None,
        imported: bool = False, created_text: str | None = None,
    ) -> StoredCycle:
        """The cycle row, created on first use (race-safe: a concurrent creator's row is returned)."""
        for _ in range(3):
            try:
                with self._tx() as s:
                    return self._cycle_row(s, team_key, label, opens_at=opens_at, deadline=deadline,
                                           imported=imported, created_text=created_text)
            except IntegrityError:
                continue  # another process created it just now: found on the next try
        raise RuntimeError(f"could not create cycle {team_key}/{label}")

    @staticmethod
    def _cycle_row(s: Session, team_key: str, label: str, *, opens_at: datetime | None, deadline: datetime | None,
                   imported: bool, created_text: str | None) -> StoredCycle:
        """Find or create the cycle in the caller's transaction. A stored cycle keeps its times whatever the
        schedule says now: only missing ones are filled; `imported` and a Created line are added."""
        team = s.scalar(select(TeamRow).where(TeamRow.key == team_key))
        assert team is not None, "sync_team first"
        row = s.scalar(select(CycleRow).where(CycleRow.team_id == team.id, CycleRow.label == label))
        if row is None:
            row = CycleRow(team_id=team.id, label=label, opens_at=opens_at, deadline=deadline, imported=imported,
                           created_text=created_text)
            s.add(row)
        else:
            if row.opens_at is None and opens_at is not None:
                row.opens_at, row.deadline = opens_at, deadline
            row.imported = row.imported or imported
            row.created_text = created_text or row.created_text
        s.flush()
        return StoredCycle(row.id, team_key, label, row.opens_at, row.deadline, row.imported, row.created_text)

    def find_cycle(self, *, team_key: str, label: str) -> StoredCycle | None:
        with self._read() as s:
            row = s.scalar(
                select(CycleRow).join(TeamRow, TeamRow.id == CycleRow.team_id)
                .where(TeamRow.key == team_key, CycleRow.label == label)
            )
            if row is None:
                return None
            return StoredCycle(row.id, team_key, label, row.opens_at, row.deadline, row.imported, row.created_text)

    def cycles(self, *, team_key: str) -> list[StoredCycle]:
        """Every stored cycle of the team (opened or imported), in no particular order."""
        with self._read() as s:
            rows = s.scalars(select(CycleRow).join(TeamRow, TeamRow.id == CycleRow.team_id)
                             .where(TeamRow.key == team_key))
            return [StoredCycle(r.id, team_key, r.label, r.opens_at, r.deadline, r.imported, r.created_text)
                    for r in rows]

    def cycle_labels(self, *, team_key: str) -> list[str]:
        with self._read() as s:
            return list(s.scalars(
                select(CycleRow.label).join(TeamRow, TeamRow.id == CycleRow.team_id).where(TeamRow.key == team_key)
            ))

    # -- updates -----------------------------------------------------------------------------
    def _mark(self, s: Session, event: tuple[str, str] | None, at: datetime) -> None:
        """Mark a platform event handled in the caller's transaction: the change and the mark commit
        together or not at all. Raises AlreadyHandled for an event marked before (a redelivery)."""
        if event is None:
            return
        params = {"platform": event[0], "event_id": event[1], "at": at}
        if s.execute(self._q.mark_in_session, params).first() is None:  # nothing inserted: marked before
            raise AlreadyHandled(event[1])

    def mark_event(self, *, platform: str, event_id: str, at: datetime) -> None:
        """Mark an event that changes nothing else handled; AlreadyHandled when it was."""
        with self._tx() as s:
            self._mark(s, (platform, event_id), at)

    def add_update(
        self, *, cycle_id: int, section_key: str | None, member_key: str, platform: str,
        message_id: str | None, text: str, at: datetime, late: bool, event: tuple[str, str] | None = None,
        changed_ts: float | None = None, unskip: bool = False,
    ) -> tuple[StoredUpdate, bool]:
        """Store an answer, and mark `event` handled in the same transaction; the same platform message
        stored twice gives the first back (created False). With `unskip`, a new answer also takes back
        the member's skip of the cycle. One short transaction: the event's and the message's unique keys
        decide (INSERT … ON CONFLICT DO NOTHING), nothing is read first. The ack path of every DM: Core
        statements built once, on a bare connection (no ORM session, no statement built per call)."""
        values = dict(cycle_id=cycle_id, section_key=section_key, member_key=member_key, platform=platform,
                      message_id=message_id, text=text, deleted=False, late=late, created_at=at, updated_at=at,
                      changed_ts=changed_ts)
        q = self._q
        # PostgreSQL's one statement (`_NewAnswers`): the answer's values, its event and whether to unskip
        answer = ({**values, "at": at, "event_id": event[1], "unskip": unskip}
                  if q.new is not None and event is not None else None)
        batch: _Batch | None = getattr(self._together, "batch", None)
        if batch is not None and answer is not None and message_id is not None and section_key is not None:
            # in a batch (see `together`): taken to be new, stored with the others (its id set then); one
            # without a section is not, as its choice buttons need its id now
            update = StoredUpdate(id=0, cycle_id=cycle_id, section_key=section_key, member_key=member_key,
                                  platform=platform, message_id=message_id, text=text, deleted=False, late=late,
                                  created_at=at, updated_at=at)
            batch.answers.append((answer, update))
            return update, True
        with self._write() as conn:
            if q.new is not None and answer is not None and message_id is not None:  # PostgreSQL: one statement
                marked, ids = q.new.run(conn, [answer])
                if not marked:
                    raise AlreadyHandled(answer["event_id"])  # marked before: a redelivery
                new_id = ids.get(message_id)
            else:
                if event is not None and q.mark.run(
                        conn, {"platform": event[0], "event_id": event[1], "at": at}).fetchone() is None:
                    raise AlreadyHandled(event[1])  # marked before: a redelivery
                row = (q.add if message_id is None else q.add_once).run(conn, values).fetchone()
                new_id = None if row is None else int(row[0])
                if new_id is not None:
                    q.first_revision.run(conn, {"update_id": new_id, "number": 1, "action": "create", "text": text,
                                                "at": at})
                    if unskip:
                        q.unskip.run(conn, {"cycle_id": cycle_id, "member_key": member_key})
            if new_id is None:  # that message was stored before
                known = conn.execute(q.by_message, {"platform": platform, "message_id": message_id}).first()
                assert known is not None
                return stored_update(known), False  # type: ignore[arg-type]  # a row has the same fields
            return StoredUpdate(id=new_id, cycle_id=cycle_id, section_key=section_key, member_key=member_key,
                                platform=platform, message_id=message_id, text=text, deleted=False, late=late,
                                created_at=at, updated_at=at), True

    def update_by_message(self, *, platform: str, message_id: str) -> StoredUpdate | None:
        with self._read() as s:
            row = s.scalar(select(UpdateRow).where(UpdateRow.platform == platform, UpdateRow.message_id == message_id))
            return None if row is None else stored_update(row)

    def get_update(self, *, update_id: int) -> StoredUpdate | None:
        with self._read() as s:
            row = s.get(UpdateRow, update_id)
            return None if row is None else stored_update(row)

    def _revise(self, s: Session, row: UpdateRow, action: str, text: str, at: datetime) -> None:
        number = max((r.number for r in row.revisions), default=0) + 1
        row.revisions.append(RevisionRow(number=number, action=action, text=text, at=at))
        row.updated_at = at

    def _change(self, *, platform: str, message_id: str, at: datetime, event: tuple[str, str] | None,
                changed_ts: float | None, apply: Callable[[Session, UpdateRow], None]) -> StoredUpdate | None:
        """Apply a change to the answer of a platform message and mark `event` handled, in one transaction.
        None (and nothing marked) when no answer has that message id. A change older than the newest one
        applied (a late retry: an edit after the deletion that followed it) is marked but not applied."""
        try:
            with self._tx() as s:
                self._mark(s, event, at)
                row = s.scalar(
                    select(UpdateRow).where(UpdateRow.platform == platform, UpdateRow.message_id == message_id)
                    .with_for_update()
                )
                if row is None:
                    raise _Unknown
                if changed_ts is None or row.changed_ts is None or changed_ts > row.changed_ts:
                    apply(s, row)
                    row.changed_ts = changed_ts if changed_ts is not None else row.changed_ts
                return stored_update(row)
        except _Unknown:
            return None

    def edit_update(self, *, platform: str, message_id: str, text: str, at: datetime,
                    event: tuple[str, str] | None = None, changed_ts: float | None = None) -> StoredUpdate | None:
        """Replace an answer's text, keeping the earlier text as a revision; None if unknown."""

        def edit(s: Session, row: UpdateRow) -> None:
            if row.text != text or row.deleted:
                row.text, row.deleted = text, False
                self._revise(s, row, "edit", text, at)

        return self._change(platform=platform, message_id=message_id, at=at, event=event, changed_ts=changed_ts,
                            apply=edit)

    def delete_update(self, *, platform: str, message_id: str, at: datetime,
                      event: tuple[str, str] | None = None, changed_ts: float | None = None) -> StoredUpdate | None:
        """Mark an answer deleted; its text stays in its revisions."""

        def delete(s: Session, row: UpdateRow) -> None:
            if not row.deleted:
                row.deleted = True
                self._revise(s, row, "delete", "", at)

        return self._change(platform=platform, message_id=message_id, at=at, event=event, changed_ts=changed_ts,
                            apply=delete)

    def assign_section(self, *, update_id: int, section_key: str, cycle_id: int | None = None,
                       at: datetime, event: tuple[str, str] | None = None) -> StoredUpdate | None:
        """Give an update its section (and the cycle of that section's team); pressing twice changes nothing.
        With `event`, the press is marked handled in the same transaction (AlreadyHandled when it was)."""
        with self._tx() as s:
            self._mark(s, event, at)
            row = s.get(UpdateRow, update_id)
            if row is None:
                return None
            if row.section_key != section_key or (cycle_id is not None and row.cycle_id != cycle_id):
                row.section_key = section_key
                row.cycle_id = cycle_id if cycle_id is not None else row.cycle_id
                self._revise(s, row, "assign", row.text, at)
            return stored_update(row)

    def updates(self, *, cycle_id: int, include_deleted: bool = False) -> list[StoredUpdate]:
        with self._read() as s:
            q = select(UpdateRow).where(UpdateRow.cycle_id == cycle_id)
            if not include_deleted:
                q = q.where(UpdateRow.deleted.is_(False))
            return [stored_update(r) for r in s.scalars(q.order_by(UpdateRow.created_at, UpdateRow.id))]

    def revisions(self, *, update_id: int) -> list[StoredRevision]:
        with self._read() as s:
            rows = s.scalars(select(RevisionRow).where(RevisionRow.update_id == update_id).order_by(RevisionRow.number))
            return [StoredRevision(r.number, r.action, r.text, r.at) for r in rows]

    def put_imported_report(self, *, team_key: str, report: ImportedReport, member_key: str,
                            at: datetime) -> StoredCycle:
        """A past report in one transaction: its cycle (created, or its missing times filled and marked
        imported), the extra sections it brings, every section's text and its closing sections. Importing
        the same report again revises a changed text (a new revision) and never doubles one. Bulk
        statements, not a round trip per section: a 300-section report is a handful of statements."""
        for attempt in range(3):
            try:
                with self._tx() as s:
                    return self._put_imported_report(s, team_key, report, member_key, at)
            except IntegrityError:
                if attempt == 2:  # another process imports the same report at once; its rows are ours
                    raise
        raise AssertionError("unreachable")

    def _put_imported_report(self, s: Session, team_key: str, report: ImportedReport, member_key: str,
                             at: datetime) -> StoredCycle:
        cycle = self._cycle_row(s, team_key, report.label, opens_at=report.opens_at, deadline=report.deadline,
                                imported=True, created_text=report.created_text)
        conn = s.connection()
        if report.extra_sections:
            team_id = conn.scalar(select(TeamRow.id).where(TeamRow.key == team_key))
            known = set(conn.scalars(select(SectionRow.key).where(
                SectionRow.team_id == team_id, SectionRow.key.in_([x.key for x in report.extra_sections]))))
            new_sections = [dict(team_id=team_id, key=x.key, title=x.title, style=x.style, extra=True)
                            for x in report.extra_sections if x.key not in known]
            if new_sections:
                conn.execute(insert(SectionRow), new_sections)
        # a title written twice in one report: the later text is an edit of the earlier, as it was read
        rounds: list[list[ImportedSection]] = []
        seen: dict[str, int] = {}
        for x in report.sections:
            n = seen[x.message_id] = seen.get(x.message_id, -1) + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(x)
        for texts in rounds:
            self._put_imported_texts(conn, cycle.id, texts, member_key, at)
        if report.summary is not None and report.summary_key is not None:
            self._write_summary(s, cycle_id=cycle.id, cache_key=report.summary_key, summary=report.summary, at=at)
        return cycle

    @staticmethod
    def _put_imported_texts(conn: Connection, cycle_id: int, texts: Sequence[ImportedSection], member_key: str,
                            at: datetime) -> None:
        """New texts inserted with their first revision; a known one whose text changed (or that was
        deleted) revised, as an edit; an unchanged one left alone."""
        if not texts:
            return
        # the cycle's imported rows, picked here: `message_id IN (300 ids)` led PostgreSQL, with no statistics
        # yet during a bulk import, to read every imported row and compare each with all 300 (52 reports:
        # 7.9 of 12 s). A report's texts live in its own cycle (their ids name it: team/label/section).
        wanted = {x.message_id for x in texts}
        known = {m: (i, t, d) for i, m, t, d in conn.execute(
            select(UpdateRow.id, UpdateRow.message_id, UpdateRow.text, UpdateRow.deleted)
            .where(UpdateRow.cycle_id == cycle_id, UpdateRow.platform == "import")) if m in wanted}
        fresh = [x for x in texts if x.message_id not in known]
        if fresh:
            ids = dict(conn.execute(
                insert(UpdateRow).returning(UpdateRow.message_id, UpdateRow.id),
                [dict(cycle_id=cycle_id, section_key=x.key, member_key=member_key, platform="import",
                      message_id=x.message_id, text=x.text, deleted=False, late=False, created_at=at,
                      updated_at=at, changed_ts=None) for x in fresh]).all())
            conn.execute(insert(RevisionRow), [dict(update_id=ids[x.message_id], number=1, action="create",
                                                  text=x.text, at=at) for x in fresh])
        changed = [(known[x.message_id][0], x.text) for x in texts
                   if x.message_id in known and (known[x.message_id][1] != x.text or known[x.message_id][2])]
        if changed:
            numbers = dict(conn.execute(
                select(RevisionRow.update_id, func.max(RevisionRow.number))
                .where(RevisionRow.update_id.in_([i for i, _ in changed])).group_by(RevisionRow.update_id)).all())
            conn.execute(update(UpdateRow).where(UpdateRow.id == bindparam("row_id")).values(
                text=bindparam("new_text"), deleted=False, updated_at=at),
                [dict(row_id=i, new_text=t) for i, t in changed])
            conn.execute(insert(RevisionRow), [dict(update_id=i, number=(numbers.get(i) or 0) + 1, action="edit",
                                                  text=t, at=at) for i, t in changed])

    # -- skips -------------------------------------------------------------------------------
    def set_skip(self, *, cycle_id: int, member_key: str, at: datetime) -> bool:
        try:
            with self._tx() as s:
                s.add(SkipRow(cycle_id=cycle_id, member_key=member_key, at=at))
            return True
        except IntegrityError:
            return False

    def clear_skip(self, *, cycle_id: int, member_key: str) -> None:
        with self._tx() as s:
            s.execute(delete(SkipRow).where(SkipRow.cycle_id == cycle_id, SkipRow.member_key == member_key))

    def skips(self, *, cycle_id: int) -> set[str]:
        with self._read() as s:
            return set(s.scalars(select(SkipRow.member_key).where(SkipRow.cycle_id == cycle_id)))

    # -- away ------------------------------------------------------------------------------
    def add_away(self, *, member_key: str, first: date, last: date, at: datetime) -> bool:
        """Store days away; the same range twice is stored once (False)."""
        try:
            with self._tx() as s:
                s.add(AwayRow(member_key=member_key, first_day=first, last_day=last, at=at))
            return True
        except IntegrityError:
            return False

    def clear_away(self, *, member_key: str, from_day: date) -> int:
        """Forget the member's away days from `from_day` on (past ones stay history); returns how many."""
        with self._tx() as s:
            rows = list(s.scalars(select(AwayRow).where(AwayRow.member_key == member_key,
                                                        AwayRow.last_day >= from_day)))
            for row in rows:
                if row.first_day < from_day:
                    row.last_day = from_day - timedelta(days=1)
                else:
                    s.delete(row)
            return len(rows)

    def away(self, *, member_key: str | None = None) -> list[tuple[str, date, date]]:
        """(member, first day, last day) said in chat, oldest first."""
        with self._read() as s:
            q = select(AwayRow.member_key, AwayRow.first_day, AwayRow.last_day)
            if member_key is not None:
                q = q.where(AwayRow.member_key == member_key)
            return [(m, a, b) for m, a, b in s.execute(q.order_by(AwayRow.first_day, AwayRow.id))]

    # -- platform events ---------------------------------------------------------------------
    def claim_event(self, *, platform: str, event_id: str, at: datetime) -> bool:
        """True the first time an event id is seen, False for a retry or redelivery."""
        try:
            with self._tx() as s:
                s.add(ProcessedEventRow(platform=platform, event_id=event_id, at=at))
            return True
        except IntegrityError:
            return False

    def event_seen(self, *, platform: str, event_id: str) -> bool:
        with self._read() as s:
            return s.scalar(select(ProcessedEventRow.id).where(
                ProcessedEventRow.platform == platform, ProcessedEventRow.event_id == event_id)) is not None

    def prune_events(self, *, before: datetime) -> int:
        """Forget events older than any platform's redelivery (Slack and Feishu retry for minutes, not days)."""
        with self._tx() as s:
            result = s.execute(delete(ProcessedEventRow).where(ProcessedEventRow.at < before))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- outgoing messages (exactly once) ----------------------------------------------------
    def claim_outgoing(
        self, *, key: str, team_key: str, cycle_label: str, member_key: str, kind: str, offset_label: str,
        at: datetime,
    ) -> bool:
        """Claim a message under its unique key before sending it; False if someone already did."""
        try:
            with self._tx() as s:
                s.add(OutgoingRow(
                    key=key, team_key=team_key, cycle_label=cycle_label, member_key=member_key, kind=kind,
                    offset_label=offset_label, status="claimed", attempts=0, claimed_at=at,
                ))
            return True
        except IntegrityError:
            return False

    def reclaim_failed(self, *, key: str, at: datetime) -> bool:
        """Take a failed message back for another try; only one process wins it."""
        with self._tx() as s:
            result = s.execute(
                update(OutgoingRow).where(OutgoingRow.key == key, OutgoingRow.status == "failed")
                .values(status="claimed", claimed_at=at)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def reclaim_stale(self, *, key: str, before: datetime, at: datetime) -> bool:
        """Take back a claim older than `before` that was never finished (its process died)."""
        with self._tx() as s:
            result = s.execute(
                update(OutgoingRow).where(OutgoingRow.key == key, OutgoingRow.status == "claimed",
                                          OutgoingRow.claimed_at < before)
                .values(claimed_at=at)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def refresh_outgoing(self, *, keys: Sequence[str], at: datetime) -> None:
        """Move the claims of a live sender forward to `at` (never back)."""
        with self._tx() as s:
            s.execute(update(OutgoingRow).where(OutgoingRow.key.in_(list(keys)), OutgoingRow.status == "claimed",
                                                OutgoingRow.claimed_at < at).values(claimed_at=at))

    def finish_outgoing(self, *, key: str, ok: bool, at: datetime, error: str | None = None) -> None:
        with self._tx() as s:
            row = s.scalar(select(OutgoingRow).where(OutgoingRow.key == key))
            if row is None:
                return
            row.attempts += 1
            row.status = "sent" if ok else "failed"
            row.sent_at = at if ok else None
            row.last_error = error

    def outgoing(self, *, status: str | None = None, team_key: str | None = None,
                 cycle_label: str | None = None) -> list[Outgoing]:
        with self._read() as s:
            q = select(OutgoingRow).order_by(OutgoingRow.id)
            if status:
                q = q.where(OutgoingRow.status == status)
            if team_key:
                q = q.where(OutgoingRow.team_key == team_key)
            if cycle_label:
                q = q.where(OutgoingRow.cycle_label == cycle_label)
            return [
                Outgoing(r.key, r.team_key, r.cycle_label, r.member_key, r.kind, r.offset_label, r.status,
                         r.attempts, r.last_error)
                for r in s.scalars(q)
            ]

    # -- summaries ---------------------------------------------------------------------------
    def get_summary(self, *, cache_key: str) -> Summary | None:
        with self._read() as s:
            row = s.scalar(select(SummaryRow).where(SummaryRow.cache_key == cache_key))
            return None if row is None else self._summary(row)

    def put_summary(self, *, cycle_id: int, cache_key: str, summary: Summary, at: datetime) -> None:
        try:
            with self._tx() as s:
                self._write_summary(s, cycle_id=cycle_id, cache_key=cache_key, summary=summary, at=at)
        except IntegrityError:
            pass  # a concurrent writer stored the same key: same inputs, same answer

    @staticmethod
    def _write_summary(s: Session, *, cycle_id: int, cache_key: str, summary: Summary, at: datetime) -> None:
        """Store a summary under its key in the caller's transaction, replacing one stored before."""
        row = s.scalar(select(SummaryRow).where(SummaryRow.cache_key == cache_key))
        if row is None:
            row = SummaryRow(cycle_id=cycle_id, cache_key=cache_key)
            s.add(row)
        row.source = summary.source
        row.prompt_version, row.model, row.note = summary.prompt_version, summary.model, summary.note
        row.reflections, row.next_week = _items(summary.reflections), _items(summary.next_week)
        row.dropped = list(summary.dropped)
        row.tokens_in, row.tokens_out, row.latency_ms = summary.tokens_in, summary.tokens_out, summary.latency_ms
        row.created_at = at
        row.chosen_at = at

    def latest_summary(self, *, cycle_id: int, sources: Sequence[str]) -> Summary | None:
        with self._read() as s:
            row = s.scalar(
                select(SummaryRow).where(SummaryRow.cycle_id == cycle_id, SummaryRow.source.in_(list(sources)))
                .order_by(SummaryRow.created_at.desc(), SummaryRow.id.desc()).limit(1)
            )
            return None if row is None else self._summary(row)

    # -- closing sections as revisions ---------------------------------------------------------
    _CURRENT = (func.coalesce(SummaryRow.chosen_at, SummaryRow.created_at).desc(), SummaryRow.id.desc())

    def current_summary(self, *, cycle_id: int, sources: Sequence[str] | None = None) -> SummaryRevision | None:
        """The newest revision (made, or drafted again, last), of the given sources when given."""
        with self._read() as s:
            q = select(SummaryRow).where(SummaryRow.cycle_id == cycle_id)
            if sources is not None:
                q = q.where(SummaryRow.source.in_(list(sources)))
            row = s.scalar(q.order_by(*self._CURRENT).limit(1))
            return None if row is None else self._revision(row)

    def summary_revisions(self, *, cycle_id: int) -> list[SummaryRevision]:
        """Every revision of the cycle's closing sections, oldest first, each with when it was last published."""
        with self._read() as s:
            q = select(SummaryRow).where(SummaryRow.cycle_id == cycle_id).order_by(SummaryRow.created_at, SummaryRow.id)
            rows = list(s.scalars(q))
            published = dict(s.execute(
                select(SnapshotRow.summary_id, func.max(SnapshotRow.published_at))
                .where(SnapshotRow.cycle_id == cycle_id, SnapshotRow.published_at.is_not(None))
                .group_by(SnapshotRow.summary_id)).all())
            return [self._revision(r, published.get(r.id)) for r in rows]

    def summary_revision(self, *, summary_id: int) -> SummaryRevision | None:
        with self._read() as s:
            row = s.get(SummaryRow, summary_id)
            return None if row is None else self._revision(row)

    def add_edited_summary(self, *, cycle_id: int, summary: Summary, author: str, at: datetime) -> int:
        with self._tx() as s:
            row = SummaryRow(cycle_id=cycle_id, cache_key=f"edited:{cycle_id}:{at.timestamp():.6f}:{author}",
                             source="edited", reflections=_items(summary.reflections),
                             next_week=_items(summary.next_week), dropped=[], created_at=at, chosen_at=at,
                             author=author, tokens_in=0, tokens_out=0, latency_ms=0)
            s.add(row)
            s.flush()
            return int(row.id)

    def choose_summary(self, *, cache_key: str, at: datetime) -> None:
        """Make a stored draft the current revision again (it was drafted anew with nothing changed)."""
        with self._tx() as s:
            s.execute(update(SummaryRow).where(SummaryRow.cache_key == cache_key).values(chosen_at=at))

    @staticmethod
    def _revision(row: SummaryRow, published_at: datetime | None = None) -> SummaryRevision:
        return SummaryRevision(id=row.id, key=row.cache_key, source=row.source, author=row.author,
                               created_at=row.created_at, current_at=row.chosen_at or row.created_at,
                               reflections=tuple(summary_items(row.reflections)),
                               next_week=tuple(summary_items(row.next_week)), note=row.note, model=row.model,
                               prompt_version=row.prompt_version, published_at=published_at)

    # -- snapshots and documents ---------------------------------------------------------------
    def save_snapshot(self, *, cycle_id: int, digest: str, markdown: str, summary_id: int | None, by: str | None,
                      at: datetime) -> Snapshot:
        """The snapshot of this report (the same report shown twice is one snapshot)."""
        def find(s: Session) -> SnapshotRow | None:
            return s.scalar(select(SnapshotRow).where(SnapshotRow.cycle_id == cycle_id, SnapshotRow.digest == digest))

        try:
            with self._tx() as s:
                row = find(s)
                if row is None:
                    row = SnapshotRow(cycle_id=cycle_id, digest=digest, markdown=markdown, summary_id=summary_id,
                                      made_by=by, made_at=at)
                    s.add(row)
                    s.flush()
                return self._snapshot(row)
        except IntegrityError:  # made by another process at the same moment
            with self._read() as s:
                found = find(s)
                assert found is not None
                return self._snapshot(found)

    def get_snapshot(self, *, snapshot_id: int) -> Snapshot | None:
        with self._read() as s:
            row = s.get(SnapshotRow, snapshot_id)
            return None if row is None else self._snapshot(row)

    def latest_snapshot(self, *, cycle_id: int, published: bool = False) -> Snapshot | None:
        with self._read() as s:
            q = select(SnapshotRow).where(SnapshotRow.cycle_id == cycle_id)
            if published:
                q = q.where(SnapshotRow.published_at.is_not(None)).order_by(SnapshotRow.published_at.desc(),
                                                                      SnapshotRow.id.desc())
            else:
                q = q.order_by(SnapshotRow.made_at.desc(), SnapshotRow.id.desc())
            row = s.scalar(q.limit(1))
            return None if row is None else self._snapshot(row)

    def last_preview(self, *, team_key: str, member: str) -> tuple[str, datetime] | None:
        """The cycle label and time of the newest report `member` previewed in the team, if any."""
        with self._read() as s:
            row = s.execute(
                select(CycleRow.label, SnapshotRow.made_at).join(CycleRow, CycleRow.id == SnapshotRow.cycle_id)
                .join(TeamRow, TeamRow.id == CycleRow.team_id)
                .where(TeamRow.key == team_key, SnapshotRow.made_by == member)
                .order_by(SnapshotRow.made_at.desc(), SnapshotRow.id.desc()).limit(1)).first()
            return None if row is None else (row[0], row[1])

    def mark_published(self, *, snapshot_id: int, at: datetime) -> None:
        with self._tx() as s:
            s.execute(update(SnapshotRow).where(SnapshotRow.id == snapshot_id).values(published_at=at))

    @staticmethod
    def _snapshot(row: SnapshotRow) -> Snapshot:
        return Snapshot(id=row.id, cycle_id=row.cycle_id, digest=row.digest, markdown=row.markdown,
                        summary_id=row.summary_id, made_by=row.made_by, made_at=row.made_at,
                        published_at=row.published_at)

    def document(self, *, cycle_id: int, target: str) -> tuple[str, str | None] | None:
        """(external id, url) of the cycle's document on a target, if one was made."""
        with self._read() as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.cycle_id == cycle_id, DocumentRow.target == target))
            return None if row is None or not row.external_id else (row.external_id, row.url)

    def put_document(self, *, cycle_id: int, target: str, external_id: str, url: str | None, at: datetime) -> None:
        with self._tx() as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.cycle_id == cycle_id, DocumentRow.target == target))
            if row is None:
                s.add(DocumentRow(cycle_id=cycle_id, target=target, external_id=external_id, url=url, at=at))
            else:
                row.external_id, row.url, row.at = external_id, url, at

    @staticmethod
    def _summary(row: SummaryRow) -> Summary:
        return Summary(
            reflections=summary_items(row.reflections), next_week=summary_items(row.next_week),
            source=row.source,  # type: ignore[arg-type]
            note=row.note, dropped=list(row.dropped or []), prompt_version=row.prompt_version, model=row.model,
            tokens_in=row.tokens_in, tokens_out=row.tokens_out, latency_ms=row.latency_ms, calls=0,
            key=row.cache_key,
        )
