"""Engines for SQLite (embedded default) and PostgreSQL (shared), and Alembic migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from bot.errors import ConfigError

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


def _engine(parsed: URL, **kwargs: Any) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        # hide_parameters: a database error must not carry an owner's message into the log
        engine = create_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN IMMEDIATE is possible.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front: no deadlock between two upgrading readers.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True, **kwargs)


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
    """Upgrade an empty SQLite database on the spot; otherwise insist on `weekly-bot db upgrade`."""
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
