"""Engines for SQLite (embedded default) and PostgreSQL (shared), and Alembic migrations."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from bot.errors import ConfigError
from bot.lanes import in_background

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy would pick psycopg2, which we don't ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with SQLite set up for concurrent processes: WAL, foreign keys, a busy timeout."""
    try:
        parsed = make_url(normalize_url(url))
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL {url!r} is not a database URL (try sqlite:///weekly.db)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL {url!r}: unsupported database (use sqlite:/// or postgresql://)")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"DATABASE_URL {url!r} is an in-memory database: nothing would be kept "
                        "(use a file, like sqlite:///weekly.db)")
    try:
        return _engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError):
        raise ConfigError(f"DATABASE_URL {url!r}: no driver for it here (use sqlite:/// or postgresql://)") from None


LOCK_WAIT_MS = 2000  # a locked database fails a request well inside Slack's 3 seconds (spec §9)
STATEMENT_MS = 2500
READ = {"weekly_read": True}  # execution option: a transaction that only reads takes no write lock
# Connections per process, so that an ack never waits for one (bot.lanes): POOL_SIZE is room for every
# thread on an ack path at once — the request workers (handlers.edge.WORKER_THREADS, 16), each edge's
# group-commit thread (2), /healthz's (2); or, in `socket`, the SDKs' (Bolt's Socket Mode runs 10). Every
# other thread (work after acks, the fan-out's senders, the scheduler, the web view) runs its transactions
# in bot.lanes.background(), where each first takes one of POOL_OVERFLOW turns (`Turns`): the pool is
# never asked for more than POOL_SIZE + POOL_OVERFLOW connections, so none waits for one.
POOL_SIZE, POOL_OVERFLOW = 20, 10
# background work waits no longer for a turn than an ack waits for the database: a page or a send behind
# stuck transactions fails fast too (spec §9), with one clear line, and is tried again (a send: next tick)
TURN_WAIT_S = LOCK_WAIT_MS / 1000


class NoTurn(TimeoutError):
    """Background work found no database turn within TURN_WAIT_S (the others' transactions are stuck)."""


class Turns:
    """POOL_OVERFLOW turns per engine for the transactions of work off the ack path (bot.lanes): taken by
    a thread's outermost transaction in `background()`, given back when it ends (or NoTurn after
    `wait_s`); a thread on an ack path takes none and never waits here. One per engine: `turns_for`."""

    def __init__(self, turns: int = POOL_OVERFLOW, *, wait_s: float = TURN_WAIT_S) -> None:
        self._free = threading.BoundedSemaphore(turns)
        self._wait_s = wait_s
        self._held = threading.local()  # .depth: this thread's transactions open inside its turn

    @contextmanager
    def __call__(self) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth == 0 and not in_background():  # the ack path (and what it nests) goes straight on
            yield
            return
        if depth == 0 and not self._free.acquire(timeout=self._wait_s):
            raise NoTurn(f"no database turn for background work within {self._wait_s:g} s")
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                self._free.release()


_TURNS: weakref.WeakKeyDictionary[Engine, Turns] = weakref.WeakKeyDictionary()
_TURNS_GUARD = threading.Lock()


def turns_for(engine: Engine) -> Turns:
    """The engine's turns, shared by everything that opens transactions on its pool (Store, LlmModes)."""
    with _TURNS_GUARD:
        turns = _TURNS.get(engine)
        if turns is None:
            turns = _TURNS[engine] = Turns()
        return turns


# A pooled PostgreSQL connection idle this long is pinged before use: one a restarted server or a proxy's
# idle timeout dropped is replaced by a fresh one instead of failing the request. One used within it is
# not pinged: a ping is a round trip, and under load, where every connection is busy, it cost the ack
# path a tenth of its CPU (issue 13). A connection that breaks in use fails the transaction on it (a group
# of DMs is run again, each alone; a lone DM's platform delivers it again), and SQLAlchemy replaces it.
PING_IDLE_S = 10.0


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """pool_pre_ping, but only for a connection that has been idle `idle_s` or more (pool events)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # the pool discards it and connects afresh
            raise DisconnectionError(f"a pooled connection idle {time.monotonic() - since:.0f} s was gone") from e


def _engine(parsed: URL, *, lock_wait_ms: int = LOCK_WAIT_MS, ping_idle_s: float = PING_IDLE_S,
            **kwargs: Any) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        # hide_parameters: a database error must not carry an owner's message into the log
        kwargs = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} | kwargs
        engine = create_engine(parsed, connect_args={"timeout": lock_wait_ms / 1000}, hide_parameters=True,
                               pool_timeout=lock_wait_ms / 1000, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN IMMEDIATE is possible.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses nothing committed
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(lock_wait_ms)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front: no deadlock between two upgrading readers. Readers take none:
            # in WAL mode they see the last commit while a writer works.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("weekly_read") else "BEGIN IMMEDIATE")

        return engine
    # lock_timeout / statement_timeout: a lock held elsewhere fails the request fast instead of hanging it
    options = f"-c lock_timeout={int(lock_wait_ms)} -c statement_timeout={int(lock_wait_ms * STATEMENT_MS / LOCK_WAIT_MS)}"
    given = parsed.query.get("options")  # the URL's own (a search_path, say) come first
    if given:
        options = f"{given if isinstance(given, str) else ' '.join(given)} {options}"
        parsed = parsed.difference_update_query(["options"])
    connect_args = {"connect_timeout": max(1, lock_wait_ms // 1000), "options": options}
    kwargs = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} | kwargs
    engine = create_engine(parsed, hide_parameters=True, connect_args=connect_args,
                           pool_timeout=lock_wait_ms / 1000, **kwargs)
    _ping_when_idle(engine, ping_idle_s)
    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Apply migrations up to head; returns (before, after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty SQLite database on the spot; otherwise insist on `weekly-bot db upgrade`. Processes
    starting together on one SQLite file take turns (a lock file beside it), so none sees it half made."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        with open(f"{engine.url.database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _ensure_schema(engine)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    _ensure_schema(engine)


def _ensure_schema(engine: Engine) -> None:
    try:
        current = current_revision(engine)
        head = head_revision(engine)
        if current == head:
            return
        if engine.dialect.name == "sqlite" and (current is not None or not inspect(engine).get_table_names()):
            upgrade(engine)
            return
    except OperationalError as e:
        raise ConfigError(f"database {safe_url(engine)}: cannot open: {_first_line(e)}") from None
    except SQLAlchemyError as e:
        raise ConfigError(f"database {safe_url(engine)}: {_first_line(e)}") from None
    if current is None:
        raise ConfigError(f"database {safe_url(engine)} has no weekly-bot tables: run `weekly-bot db upgrade`")
    raise ConfigError(f"database {safe_url(engine)} is at migration {current}, not {head}: run `weekly-bot db upgrade`")


def safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _first_line(e: Exception) -> str:
    orig = getattr(e, "orig", None) or e
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
