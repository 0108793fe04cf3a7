"""Alembic environment: runs on a connection handed over by ``service.db`` (the normal path) or,
for developers running the ``alembic`` command, on ``sqlalchemy.url`` / ``TICKCAST_DB_URL``."""

from alembic import context

from tickcast.service.schema import metadata

config = context.config


def run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from tickcast.service.config import load_settings
    from tickcast.service.db import make_engine

    url = config.get_main_option("sqlalchemy.url") or load_settings().db_url
    engine = make_engine(url)
    with engine.connect() as conn:
        run_on(conn)
        conn.commit()
    engine.dispose()


main()
