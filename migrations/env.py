"""Alembic environment: runs on a connection handed over by ``service.db`` (the normal path) or,
for developers running the ``alembic`` command, on ``sqlalchemy.url`` / ``TICKCAST_DB_URL``."""

from alembic import context

from tickcast.service.schema import metadata

config = context.config


def run_on(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite alters a table by copying it and dropping the original; with foreign keys on, that
    # drop would cascade to every row referencing it (a fit's loss history and forecasts). The
    # pragma only takes effect outside a transaction, so it is switched off before the migration's
    # transaction begins (on the raw connection: SQLAlchemy would begin one first), on again after;
    # a migration that copies a table checks the keys itself before it commits.
    foreign_keys_off = sqlite and not connection.in_transaction()
    if foreign_keys_off:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=sqlite,  # SQLite alters tables by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if foreign_keys_off:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def main() -> None:
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
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
