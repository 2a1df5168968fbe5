"""The response format each LLM server accepted (json_schema, json_object with a schema, …), kept in the
database so that a CLI run does not start over by sending what the server refused last time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.engine import Engine

from storage.db import turns_for
from storage.models import UTCDateTime

metadata = MetaData()

llm_modes = Table(
    "llm_modes", metadata,
    Column("server", String(500), primary_key=True),  # the base URL, as the client uses it
    Column("model", String(200), primary_key=True),
    Column("mode", String(40), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)


class LlmModes:
    """`handlers.llm.ModeStore` over the `llm_modes` table (migration 0006)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.turns = turns_for(engine)  # the store's too: background work takes its turns (bot.lanes)

    def get_mode(self, *, server: str, model: str) -> str | None:
        with self.turns(), self.engine.connect() as conn:
            return conn.execute(
                select(llm_modes.c.mode).where(llm_modes.c.server == server, llm_modes.c.model == model)
            ).scalar_one_or_none()

    def put_mode(self, *, server: str, model: str, mode: str) -> None:
        now = datetime.now(UTC)
        with self.turns(), self.engine.begin() as conn:
            done = conn.execute(
                llm_modes.update().where(llm_modes.c.server == server, llm_modes.c.model == model)
                .values(mode=mode, updated_at=now)
            ).rowcount
            if not done:
                conn.execute(llm_modes.insert().values(server=server, model=model, mode=mode, updated_at=now))
