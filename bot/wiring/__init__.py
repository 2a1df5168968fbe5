"""The composition root: settings + team file + database + summarizer + platforms, built once for
every entry point. Only this package (and bot/cli.py) builds concrete things from storage/ and
handlers/; everything else receives them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Settings, TeamFile, load_settings, load_team_file
from bot.model import Summary
from bot.platform import Platform
from bot.service import Clock, SummarizerLike, WeeklyService, utcnow
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
    service = WeeklyService(team_file, store, clock=clock, summarizer=make_summarizer(settings, store, clock),
                            public_url=settings.public_url)
    service.sync()
    return App(settings=settings, team_file=team_file, store=store, service=service)


def build_senders(app: App) -> list[Platform]:
    """The platforms the scheduler can reach members on, from the credentials that are set."""
    from handlers import registry

    return [sender for plugin in registry.configured(app.settings) if (sender := plugin.sender(app)) is not None]


class StoredSummaries:
    """The summarizer's cache, in the database: asking again with nothing changed makes no call."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get(self, key: str) -> Summary | None:
        return self.store.get_summary(cache_key=key)

    def put(self, key: str, summary: Summary, *, cycle_id: int | None = None) -> None:
        if cycle_id is not None:
            self.store.put_summary(cycle_id=cycle_id, cache_key=key, summary=summary, at=self.clock())


def make_summarizer(settings: Settings, store: Store, clock: Clock = utcnow) -> SummarizerLike | None:
    """The LLM summarizer when an OpenAI-compatible server is configured; None means offline only."""
    if not settings.llm_enabled:
        return None
    from handlers.llm import summarizer_from_settings
    from storage.llm_modes import LlmModes

    return summarizer_from_settings(settings, cache=StoredSummaries(store, clock), modes=LlmModes(store.engine))
