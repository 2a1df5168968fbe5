"""Wiring: settings + team file + database + summarizer → one WeeklyService, for every entry point."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Settings, TeamFile, load_settings, load_team_file
from bot.service import Clock, WeeklyService, utcnow
from storage.db import ensure_schema, make_engine
from storage.repo import Store

logger = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    team_file: TeamFile
    store: Store
    service: WeeklyService


def build_app(
    *, config: str | None = None, db: str | None = None, clock: Clock = utcnow, settings: Settings | None = None,
) -> App:
    """Load and validate everything; raises UserError with one clear line when something is wrong."""
    settings = settings or load_settings()
    team_file = load_team_file(config or settings.weekly_config)
    engine = make_engine(db or settings.database_url)
    ensure_schema(engine)
    store = Store(engine)
    service = WeeklyService(team_file, store, clock=clock, summarizer=make_summarizer(settings, store))
    service.sync()
    return App(settings=settings, team_file=team_file, store=store, service=service)


def make_summarizer(settings: Settings, store: Store):  # type: ignore[no-untyped-def]
    """The LLM summarizer when an OpenAI-compatible server is configured, else None (offline)."""
    try:
        from bot.summarize import build_summarizer
    except ImportError:
        return None
    return build_summarizer(settings, store)
