"""Alembic environment: runs on the engine the caller passes, touches only ``recs_*`` tables."""

from alembic import context
from sqlalchemy import create_engine

from storefront_recs.db import VERSION_TABLE
from storefront_recs.models import metadata

config = context.config


def include_name(name, type_, parent_names):
    if type_ == "table":
        return name is not None and name.startswith("recs_") and name != VERSION_TABLE
    return True


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` CLI use, e.g. to autogenerate a revision
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            include_name=include_name,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
