"""Alembic environment: the engine comes from weekly-bot (cfg.attributes), never from an ini file."""

from alembic import context
from sqlalchemy import create_engine

from storage.db import normalize_url
from storage.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` use: take sqlalchemy.url from the config
    engine = create_engine(normalize_url(config.get_main_option("sqlalchemy.url") or "sqlite:///weekly.db"))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
