"""Storage on SQLite and PostgreSQL: migrations, revisions, dedupe, exactly-once claims."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text

from bot.errors import AlreadyHandled
from bot.lanes import background
from bot.model import Summary, SummaryItem
from storage.db import (
    LOCK_WAIT_MS,
    POOL_OVERFLOW,
    POOL_SIZE,
    NoTurn,
    Turns,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
)
from storage.repo import Store

from .conftest import ROOT

T0 = datetime(2024, 10, 15, 3, 0, tzinfo=UTC)


def store_for(url: str) -> Store:
    engine = make_engine(url)
    ensure_schema(engine)
    store = Store(engine)
    store.sync_team(key="t", title="T", sections=[("a", "A", "item"), ("b", "B", "heading")])
    return store


HEAD = sorted(p.name[:4] for p in (ROOT / "storage" / "migrations" / "versions").glob("0*.py"))[-1]


def test_migrations_create_every_table(prepared_db: str) -> None:
    engine = make_engine(prepared_db)
    assert current_revision(engine) == head_revision(engine) == HEAD
    assert set(inspect(engine).get_table_names()) >= {
        "teams", "sections", "members", "cycles", "updates", "update_revisions", "skips",
        "processed_events", "outgoing_messages", "summaries", "away", "identities", "llm_modes", "alembic_version"}


def test_empty_sqlite_is_upgraded_on_open(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    ensure_schema(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_edit_and_delete_keep_every_revision(prepared_db: str) -> None:
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    first, created = store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                                      message_id="D1:1.1", text="first text", at=T0, late=False)
    assert created
    store.edit_update(platform="slack", message_id="D1:1.1", text="second text", at=T0)
    store.delete_update(platform="slack", message_id="D1:1.1", at=T0)
    revisions = store.revisions(update_id=first.id)
    assert [(r.number, r.action, r.text) for r in revisions] == [
        (1, "create", "first text"), (2, "edit", "second text"), (3, "delete", "")]
    assert store.updates(cycle_id=cycle.id) == []
    assert [u.text for u in store.updates(cycle_id=cycle.id, include_deleted=True)] == ["second text"]
    assert revisions[0].at == T0


def test_same_message_is_stored_once(prepared_db: str) -> None:
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    a, created_a = store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                                    message_id="D1:1.1", text="x", at=T0, late=False)
    b, created_b = store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                                    message_id="D1:1.1", text="x", at=T0, late=False)
    assert (created_a, created_b, a.id) == (True, False, b.id)
    assert len(store.updates(cycle_id=cycle.id)) == 1


def test_events_are_claimed_once(prepared_db: str) -> None:
    store = store_for(prepared_db)
    assert store.claim_event(platform="slack", event_id="Ev1", at=T0) is True
    assert store.claim_event(platform="slack", event_id="Ev1", at=T0) is False
    assert store.claim_event(platform="feishu", event_id="Ev1", at=T0) is True


def test_outgoing_claim_is_won_by_exactly_one_of_many_threads(prepared_db: str) -> None:
    store = store_for(prepared_db)
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(store.claim_outgoing(key="t|2024-W42|m|prompt|", team_key="t", cycle_label="2024-W42",
                                         member_key="m", kind="prompt", offset_label="", at=T0))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(wins) == [False] * 7 + [True]
    store.finish_outgoing(key="t|2024-W42|m|prompt|", ok=False, at=T0, error="boom")
    assert store.reclaim_failed(key="t|2024-W42|m|prompt|", at=T0) is True
    assert store.reclaim_failed(key="t|2024-W42|m|prompt|", at=T0) is False


def test_cycles_are_created_once_under_concurrency(prepared_db: str) -> None:
    store = store_for(prepared_db)
    ids: list[int] = []
    barrier = threading.Barrier(6)

    def ensure() -> None:
        barrier.wait()
        ids.append(store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0).id)

    threads = [threading.Thread(target=ensure) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(ids)) == 1 and len(ids) == 6


def test_summary_round_trips(prepared_db: str) -> None:
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    summary = Summary(reflections=[SummaryItem("备份通道", ("a",))], next_week=[SummaryItem("上线", ("a", "b"))],
                      source="llm", note=None, dropped=[{"text": "x", "why": "unknown source 'z'"}],
                      prompt_version="summary-zh-1", model="m", tokens_in=10, tokens_out=5, latency_ms=7)
    store.put_summary(cycle_id=cycle.id, cache_key="k1", summary=summary, at=T0)
    got = store.get_summary(cache_key="k1")
    assert got == summary
    assert store.latest_summary(cycle_id=cycle.id, sources=("llm",)) == summary
    assert store.latest_summary(cycle_id=cycle.id, sources=("imported",)) is None


def test_a_database_at_the_first_migration_is_upgraded_keeping_its_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from storage.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO teams (key, title) VALUES ('t', 'T')")
        conn.exec_driver_sql("INSERT INTO cycles (team_id, label, imported) VALUES (1, '2024-W40', 1)")
    ensure_schema(engine)  # SQLite: upgraded on open
    assert current_revision(engine) == HEAD
    store = Store(engine)
    cycle = store.find_cycle(team_key="t", label="2024-W40")
    assert cycle is not None and (cycle.imported, cycle.created_text) == (True, None)


def test_a_change_and_its_event_mark_commit_together(prepared_db: str) -> None:
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    # an edit of a message not stored yet changes nothing and marks nothing: its redelivery is applied
    assert store.edit_update(platform="slack", message_id="D1:1.1", text="edited", at=T0,
                             event=("slack", "Ev-edit"), changed_ts=2.0) is None
    assert store.event_seen(platform="slack", event_id="Ev-edit") is False
    first, created = store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                                      message_id="D1:1.1", text="first", at=T0, late=False,
                                      event=("slack", "Ev-new"), changed_ts=1.0)
    assert created and store.event_seen(platform="slack", event_id="Ev-new")
    with pytest.raises(AlreadyHandled):  # the same delivery again: nothing is stored twice
        store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                         message_id="D1:1.1", text="first", at=T0, late=False, event=("slack", "Ev-new"))
    store.edit_update(platform="slack", message_id="D1:1.1", text="edited", at=T0,
                      event=("slack", "Ev-edit"), changed_ts=2.0)
    with pytest.raises(AlreadyHandled):
        store.edit_update(platform="slack", message_id="D1:1.1", text="edited", at=T0,
                          event=("slack", "Ev-edit"), changed_ts=2.0)
    store.delete_update(platform="slack", message_id="D1:1.1", at=T0, event=("slack", "Ev-del"), changed_ts=3.0)
    # a late retry of the edit under a new delivery id is older than the deletion: it does not undo it
    late = store.edit_update(platform="slack", message_id="D1:1.1", text="edited", at=T0,
                             event=("slack", "Ev-edit-retry"), changed_ts=2.0)
    assert late is not None and late.deleted
    assert [(r.action, r.text) for r in store.revisions(update_id=first.id)] == [
        ("create", "first"), ("edit", "edited"), ("delete", "")]
    assert store.event_seen(platform="slack", event_id="Ev-edit-retry")


def _answer(store: Store, cycle_id: int, n: int, **kw: Any) -> tuple[Any, bool]:
    fields: dict[str, Any] = dict(cycle_id=cycle_id, section_key="a", member_key=f"m{n}", platform="slack",
                                  message_id=f"D1:{n}.1", text=f"answer {n}", at=T0, late=False,
                                  event=("slack", f"Ev-{n}"))
    return store.add_update(**{**fields, **kw})


def test_a_groups_batched_answers_are_stored_once_each_with_their_ids(prepared_db: str) -> None:
    """together(batch=True) (PostgreSQL: one round trip for the group's answers) stores what the same calls
    store one by one: each answer once, its first revision, its event marked, the member's skip taken back;
    a read in the group sees the answers before it, and each returned answer carries its stored id."""
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    store.set_skip(cycle_id=cycle.id, member_key="m2", at=T0)
    with store.together(batch=True):
        first, created = _answer(store, cycle.id, 1)
        assert created
        seen = store.update_by_message(platform="slack", message_id="D1:1.1")  # sends the batch first
        assert seen is not None and seen.text == "answer 1"
        returned = [first] + [_answer(store, cycle.id, n, unskip=True)[0] for n in (2, 3)]
    stored = {u.message_id: u for u in store.updates(cycle_id=cycle.id)}
    assert sorted(stored) == ["D1:1.1", "D1:2.1", "D1:3.1"]
    assert [u.id for u in returned] == [stored[u.message_id].id for u in returned]
    assert len({u.id for u in returned}) == 3 and seen.id == first.id
    assert [(r.action, r.text) for r in store.revisions(update_id=returned[2].id)] == [("create", "answer 3")]
    assert store.skips(cycle_id=cycle.id) == set()
    assert all(store.event_seen(platform="slack", event_id=f"Ev-{n}") for n in (1, 2, 3))


def test_batched_answers_are_stored_as_the_same_calls_store_them_one_by_one(prepared_db: str) -> None:
    """What a batch stores (PostgreSQL: the group's answers in one statement, their values in arrays) is, field
    by field, what the same calls store one by one: late or not, a platform timestamp or none, text that
    needs quoting, a time given in another zone, each member's skip taken back only when asked."""
    from zoneinfo import ZoneInfo

    store = store_for(prepared_db)
    shanghai = datetime(2024, 10, 15, 11, 0, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
    calls: list[dict[str, Any]] = [
        dict(member_key="m1", text="对账差错2笔，均已处理。", late=False, at=T0, unskip=True),
        dict(member_key="m2", text="it's \"quoted\"; -- not SQL\n第二行", late=True, at=shanghai, unskip=True,
             changed_ts=1728957600.000123),
        dict(member_key="m3", text="[a, b] {c}", late=False, at=T0, unskip=False),
    ]
    stored: dict[bool, Any] = {}
    for batch in (False, True):
        cycle = store.ensure_cycle(team_key="t", label=f"2024-W4{2 + batch}", opens_at=T0, deadline=T0)
        for member in ("m2", "m3", "m4"):
            store.set_skip(cycle_id=cycle.id, member_key=member, at=T0)
        with store.together(batch=batch):
            returned = [store.add_update(cycle_id=cycle.id, section_key="a", platform="slack",
                                         message_id=f"D{int(batch)}:{n}", event=("slack", f"Ev-{int(batch)}-{n}"),
                                         **call)[0] for n, call in enumerate(calls)]
        rows = sorted(store.updates(cycle_id=cycle.id), key=lambda u: u.id)
        assert [u.id for u in returned] == [u.id for u in rows]
        with store.engine.connect() as conn:  # (not a field of StoredUpdate)
            changed = dict(conn.execute(text("SELECT id, changed_ts FROM updates")).all())
        stored[batch] = ([(u.section_key, u.member_key, u.message_id[2:], u.text, u.deleted, u.late, u.created_at,
                           u.updated_at, changed[u.id],
                           [(r.number, r.action, r.text, r.at) for r in store.revisions(update_id=u.id)])
                          for u in rows], store.skips(cycle_id=cycle.id))
    assert stored[True] == stored[False]
    assert stored[True][1] == {"m3", "m4"}  # m2's skip taken back; m3 answered without unskip; m4 did not answer
    assert stored[True][0][1][6] == datetime(2024, 10, 15, 3, 0, 5, tzinfo=UTC)
    assert [row[8] for row in stored[True][0]] == [None, 1728957600.000123, None]


def test_a_redelivery_in_a_batch_rolls_back_the_whole_group(prepared_db: str) -> None:
    """A batched answer taken to be new that was not (its event marked before, or its message stored
    under another delivery id) fails the whole transaction, even if a caller swallows the error: nothing
    of the group is stored, to be run again one by one. SQLite stores each at once: AlreadyHandled there."""
    from bot.errors import BatchMiss

    store = store_for(prepared_db)
    if store.engine.dialect.name != "postgresql":
        pytest.skip("answers are batched on PostgreSQL")
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    _answer(store, cycle.id, 1)
    for again in ({"event": ("slack", "Ev-1")}, {"event": ("slack", "Ev-1-retry")}):  # a redelivery; a new id
        with pytest.raises(BatchMiss), store.together(batch=True):
            _answer(store, cycle.id, 2)
            _answer(store, cycle.id, 1, **again)
        assert store.event_seen(platform="slack", event_id="Ev-2") is False
    for twice in ({"message_id": "D1:3.1"}, {"event": ("slack", "Ev-3")}):  # both in the batch: the second not new
        with pytest.raises(BatchMiss), store.together(batch=True):
            _answer(store, cycle.id, 2)
            _answer(store, cycle.id, 3)
            _answer(store, cycle.id, 4, **twice)
        assert store.event_seen(platform="slack", event_id="Ev-2") is False
    with pytest.raises(BatchMiss), store.together(batch=True):
        _answer(store, cycle.id, 2)
        _answer(store, cycle.id, 1)
        with pytest.raises(BatchMiss):  # sent before this read
            store.update_by_message(platform="slack", message_id="D1:2.1")
        _answer(store, cycle.id, 3)  # the caller went on: the commit still refuses
    assert [u.message_id for u in store.updates(cycle_id=cycle.id)] == ["D1:1.1"]
    assert not store.event_seen(platform="slack", event_id="Ev-3")
    with store.together(batch=True):  # the transaction after it is a fresh one
        _answer(store, cycle.id, 2)
    assert sorted(u.message_id for u in store.updates(cycle_id=cycle.id)) == ["D1:1.1", "D1:2.1"]


def test_two_writers_marking_one_event_apply_it_once(prepared_db: str) -> None:
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    store.add_update(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                     message_id="D1:1.1", text="first", at=T0, late=False)
    outcomes: list[str] = []
    lock = threading.Lock()

    def edit(n: int) -> None:
        try:
            store.edit_update(platform="slack", message_id="D1:1.1", text="edited", at=T0,
                              event=("slack", "Ev-twice"), changed_ts=2.0)
            result = "applied"
        except AlreadyHandled:
            result = "seen"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["applied"] + ["seen"] * 5


def test_an_answer_with_its_event_is_one_write_of_all_it_changes(prepared_db: str) -> None:
    """The DM ack's write (on PostgreSQL one statement): the event marked, the answer and its first revision
    added, the member's skip taken back; a redelivery changes nothing; the same message under another
    event id gives the first answer back, with that event marked."""
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    assert store.set_skip(cycle_id=cycle.id, member_key="m", at=T0)
    assert store.set_skip(cycle_id=cycle.id, member_key="other", at=T0)
    kwargs: dict[str, Any] = dict(cycle_id=cycle.id, section_key="a", member_key="m", platform="slack",
                                  message_id="D1:1.1", text="对账差错3笔", at=T0, late=True, changed_ts=1.5)
    first, created = store.add_update(**kwargs, event=("slack", "Ev1"), unskip=True)
    assert created and (first.text, first.late, first.created_at) == ("对账差错3笔", True, T0)
    assert store.skips(cycle_id=cycle.id) == {"other"}
    assert [(r.number, r.action, r.text, r.at) for r in store.revisions(update_id=first.id)] == [
        (1, "create", "对账差错3笔", T0)]
    with pytest.raises(AlreadyHandled):
        store.add_update(**kwargs, event=("slack", "Ev1"), unskip=True)
    again, created = store.add_update(**kwargs, event=("slack", "Ev2"), unskip=True)
    assert (again.id, created) == (first.id, False)
    assert store.event_seen(platform="slack", event_id="Ev2")
    assert [u.id for u in store.updates(cycle_id=cycle.id)] == [first.id]
    assert len(store.revisions(update_id=first.id)) == 1


def _pooled_backend(engine: Any) -> int:
    """The server process of the pool's one connection (a store used by one thread holds one)."""
    with engine.connect() as conn:
        pid = int(conn.connection.dbapi_connection.info.backend_pid)
    assert engine.pool.checkedin() == 1
    return pid


def test_a_postgresql_connection_dropped_while_idle_is_replaced_unseen(prepared_db: str) -> None:
    """A pooled connection idle past PING_IDLE_S is pinged before use: one the server dropped meanwhile (a
    restart, a proxy's idle timeout) is replaced and the answer stored. One busy within it is not pinged
    (a round trip per transaction was a tenth of the ack's CPU under load): the same drop fails that one
    request, whose platform delivers it again, and the next is stored on a fresh connection."""
    if not prepared_db.startswith("postgresql"):
        pytest.skip("a server that drops connections: PostgreSQL")
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    admin = make_engine(prepared_db)

    def drop(pid: int) -> None:
        with admin.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()

    answer: dict[str, Any] = dict(section_key="a", member_key="m", platform="slack", text="对账差错3笔", at=T0,
                                  late=False)
    for week, (idle_s, waited) in enumerate(((0.3, 0.5), (60.0, 0.0)), start=42):
        store = Store(make_engine(prepared_db, ping_idle_s=idle_s))
        store.sync_team(key="t", title="T", sections=[("a", "A", "item")])
        cycle = store.ensure_cycle(team_key="t", label=f"2024-W{week}", opens_at=T0, deadline=T0)
        drop(_pooled_backend(store.engine))
        time.sleep(waited)
        if idle_s < waited:  # pinged: replaced before the answer's transaction began
            stored, _ = store.add_update(cycle_id=cycle.id, message_id=f"D1:{idle_s}", **answer)
        else:
            with pytest.raises(OperationalError):
                store.add_update(cycle_id=cycle.id, message_id=f"D1:{idle_s}", **answer)
            stored, _ = store.add_update(cycle_id=cycle.id, message_id=f"D1:{idle_s}", **answer)
        assert [u.id for u in store.updates(cycle_id=cycle.id)] == [stored.id]
        store.engine.dispose()
    admin.dispose()


def test_background_work_never_takes_the_connections_an_ack_needs(prepared_db: str) -> None:
    """More background transactions than the whole pool are open at once (work after acks, the fan-out's
    senders, web pages — bot.lanes): they take POOL_OVERFLOW turns and the rest wait for one, so
    POOL_SIZE request threads storing answers at that moment each get a connection at once. Without the
    turns the parked work held all POOL_SIZE + POOL_OVERFLOW connections and every answer waited out the
    pool's 2 s timeout and failed."""
    store = store_for(prepared_db)
    store.turns = Turns(wait_s=30)  # the work waiting for a turn waits out the test, however slow the machine
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    release = threading.Event()
    parked: list[int] = []
    lock = threading.Lock()

    def background_read(i: int) -> None:
        with background(), store._read():  # the transaction each of the store's reads opens
            with lock:
                parked.append(i)
            release.wait(20)

    work = [threading.Thread(target=background_read, args=(i,)) for i in range(POOL_SIZE + POOL_OVERFLOW + 10)]
    for th in work:
        th.start()
    deadline = time.monotonic() + 10
    while len(parked) < POOL_OVERFLOW and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # had they not waited for turns, more would be in by now
    assert (len(parked), store.engine.pool.checkedout()) == (POOL_OVERFLOW, POOL_OVERFLOW)

    took: dict[int, float] = {}
    failed: list[str] = []

    def ack(i: int) -> None:  # a request worker storing a DM's answer: on the ack path, no turn
        started = time.monotonic()
        try:
            store.add_update(cycle_id=cycle.id, section_key="a", member_key=f"m{i}", platform="slack",
                             message_id=f"D{i}:1.1", text=f"answer {i}", at=T0, late=False,
                             event=("slack", f"Ev{i}"))
        except Exception as e:
            failed.append(f"{type(e).__name__}: {e}")
        took[i] = time.monotonic() - started

    acks = [threading.Thread(target=ack, args=(i,)) for i in range(POOL_SIZE)]
    for th in acks:
        th.start()
    for th in acks:
        th.join()
    release.set()
    for th in work:
        th.join()
    assert failed == []
    assert max(took.values()) < 1.0, sorted(took.values())[-3:]
    assert len(store.updates(cycle_id=cycle.id)) == POOL_SIZE
    assert sorted(parked) == list(range(POOL_SIZE + POOL_OVERFLOW + 10))  # all background work ran, in turns
    store.engine.dispose()


def test_a_thread_in_background_keeps_its_turn_through_nested_transactions(prepared_db: str) -> None:
    """A background job's transaction that calls the store again inside (a read in a write, `together`)
    holds one turn, not one per level: POOL_OVERFLOW such jobs at once do not wait on themselves."""
    store = store_for(prepared_db)
    cycle = store.ensure_cycle(team_key="t", label="2024-W42", opens_at=T0, deadline=T0)
    barrier = threading.Barrier(POOL_OVERFLOW, timeout=10)
    done: list[int] = []

    def job(i: int) -> None:
        with background(), store.together():
            barrier.wait()  # every turn is taken now
            store.add_update(cycle_id=cycle.id, section_key="a", member_key=f"m{i}", platform="slack",
                             message_id=f"D{i}:2.2", text="x", at=T0, late=False)
            assert store.update_by_message(platform="slack", message_id=f"D{i}:2.2") is not None
            done.append(i)

    if store.engine.dialect.name == "sqlite":  # one writer at a time there: the barrier would wait forever
        barrier = threading.Barrier(1, timeout=10)
    jobs = [threading.Thread(target=job, args=(i,)) for i in range(POOL_OVERFLOW)]
    for th in jobs:
        th.start()
    for th in jobs:
        th.join()
    assert sorted(done) == list(range(POOL_OVERFLOW))
    assert len(store.updates(cycle_id=cycle.id)) == POOL_OVERFLOW
    store.engine.dispose()


def test_background_work_that_finds_no_turn_fails_fast(prepared_db: str) -> None:
    """Every turn held (background transactions stuck behind a held database, say): one more piece of
    background work — a web page's read — fails with NoTurn within the time an ack would wait for the
    database (spec §9: a locked or slow database fails fast rather than stalling), not after 30 s."""
    store = store_for(prepared_db)
    release = threading.Event()
    parked = threading.Barrier(POOL_OVERFLOW + 1, timeout=10)

    def hold() -> None:
        with background(), store._read():  # the transaction each of the store's reads opens
            parked.wait()
            release.wait(20)

    holders = [threading.Thread(target=hold) for _ in range(POOL_OVERFLOW)]
    for th in holders:
        th.start()
    parked.wait()
    started = time.monotonic()
    try:
        with background(), pytest.raises(NoTurn):
            store.cycles(team_key="t")
        took = time.monotonic() - started
    finally:
        release.set()
        for th in holders:
            th.join()
    assert LOCK_WAIT_MS / 1000 - 0.1 <= took < LOCK_WAIT_MS / 1000 + 1.0, took
    assert store.cycles(team_key="t") == []  # a turn free again: it reads
    store.engine.dispose()


def test_everything_on_one_engine_shares_its_turns(prepared_db: str) -> None:
    """The turns are the engine's pool's (storage.db.turns_for): the store and the LLM modes' table on one
    engine take from the same POOL_OVERFLOW, so together they never hold more of the pool."""
    from storage.llm_modes import LlmModes

    store = store_for(prepared_db)
    assert LlmModes(store.engine).turns is store.turns
    other = make_engine(prepared_db)
    assert Store(other).turns is not store.turns
    other.dispose()
    store.engine.dispose()
