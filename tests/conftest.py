"""Shared fixtures: a team file, a database on SQLite and (when WEEKLY_TEST_POSTGRES_URL is set)
on PostgreSQL in a schema of its own, and an app on a fixed clock."""

from __future__ import annotations

import io
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from bot.chat import ChatBot
from bot.config import Settings
from bot.model import Summary, SummaryRequest
from bot.summary_offline import summarize_offline
from bot.wiring import App, build_app
from handlers.console import ConsoleChat
from storage.db import normalize_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_URL = os.environ.get("WEEKLY_TEST_POSTGRES_URL")

DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])
CYCLE = "2024-W42"  # examples/team.yaml's cycle opened Mon 10-14 10:00, deadline Thu 10-17 18:00
TEAM_TITLE = "支付清算中心周报"


def at(text_: str) -> datetime:
    """A Shanghai wall-clock time, 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text_, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


OPEN_CYCLE = at("2024-10-15 10:00")  # a moment inside CYCLE


# platform tests whose point is not storage run on SQLite only, keeping the PostgreSQL run short
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@contextmanager
def holding_database(engine: Any, seconds: float) -> Iterator[None]:
    """Another connection holds the database for `seconds` from the start of the block — SQLite's write
    lock, or PostgreSQL's table of handled events — so that requests sent in the block queue behind the
    first one and are applied as one group."""
    import sqlite3
    import threading

    holder: Any
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(str(engine.url.database), isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder = engine.raw_connection()
        holder.cursor().execute("LOCK TABLE processed_events IN EXCLUSIVE MODE")
    threading.Timer(seconds, holder.rollback).start()
    try:
        yield
    finally:
        holder.close()


def settle() -> None:
    """Give work after an ack a moment to show itself, before asserting that nothing more happened."""
    time.sleep(0.3)


class SlowSummarizer:
    """An LLM that takes longer than a platform waits for its answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[float] = []

    def summarize(self, request: SummaryRequest, *, cycle_id: int | None = None) -> Summary:
        self.started.append(time.monotonic())
        time.sleep(self.seconds)
        return summarize_offline(request)


def console(app: App, member: str) -> tuple[ConsoleChat, io.StringIO]:
    """The console edge speaking as `member`, printing into a buffer."""
    out = io.StringIO()
    return ConsoleChat(ChatBot(app.service), out, member), out


def said(out: io.StringIO) -> list[str]:
    """The lines printed since the last call."""
    lines = out.getvalue().splitlines()
    out.seek(0)
    out.truncate()
    return lines


class FixedClock:
    """The one clock the app reads; tests move it by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    shutil.copy(EXAMPLES / "team.yaml", path)
    return path


def _pg_schema_url(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=DB_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'weekly.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalize_url(PG_URL or ""))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def prepared_db(db_url: str) -> str:
    """The database at the newest migration (PostgreSQL needs `db upgrade`; SQLite does it itself)."""
    from storage.db import make_engine, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return db_url


@pytest.fixture
def make_app(team_file: Path, prepared_db: str) -> Iterator[Callable[..., App]]:
    """Build the app on the fixed clock, as every entry point does; offline unless told otherwise. Its
    database connections are closed when the test ends (threads of its edges may outlive the test a
    moment; PostgreSQL's connections are counted)."""
    built: list[App] = []

    def build(clock: FixedClock | None = None, **settings: object) -> App:
        s = Settings(weekly_config=str(team_file), database_url=prepared_db, **settings)  # type: ignore[arg-type]
        app = build_app(settings=s, clock=clock or FixedClock(at("2024-10-15 11:00")))
        built.append(app)
        return app

    yield build
    for app in built:
        app.store.engine.dispose()


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's real tokens or database settings."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "FEISHU_", "OPENAI_", "WEEKLY_LLM_")) or name in ("DATABASE_URL", "WEEKLY_CONFIG"):
            monkeypatch.delenv(name, raising=False)


from tests.serving import server  # noqa: E402, F401 - the module-wide uvicorn fixture of the platform tests
