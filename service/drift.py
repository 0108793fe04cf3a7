"""Schema drift: what the migrations made that is no longer there (a dropped view, table, column or
index), found at start-up and repaired where that is safe.

What Alembic owns is what ``service/schema.py`` mirrors (a test holds the two together): its tables
with their columns and indexes, and its views. Objects people added themselves are left alone.

Repairs: a view is recreated from the migrations' own definition; an index from the models; a
table only when nothing stored refers to it (``run_lease`` always; ``series`` not while
observations point at series ids, or a recreated table would hand those ids to other series). A
missing column, or a table that cannot be recreated, is a SchemaError naming exactly what is
missing: tickcast cannot make up the data it held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import schema
from .errors import SchemaError


@dataclass
class Drift:
    tables: list[str] = field(default_factory=list)  # missing tables
    columns: list[str] = field(default_factory=list)  # "table.column" missing from a present table
    indexes: list[str] = field(default_factory=list)  # missing indexes of present tables
    views: list[str] = field(default_factory=list)  # missing views, or views missing columns

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns or self.indexes or self.views)

    def describe(self) -> str:
        parts = [
            f"{kind} {', '.join(names)}"
            for kind, names in (
                ("missing tables:", self.tables),
                ("missing columns:", self.columns),
                ("missing indexes:", self.indexes),
                ("missing or altered views:", self.views),
            )
            if names
        ]
        return "; ".join(parts)


def find_drift(conn: Connection) -> Drift:
    """Compare the database with the models (a handful of catalogue queries)."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    drift = Drift()
    for name, table in schema.metadata.tables.items():
        if name not in present:
            drift.tables.append(name)
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        drift.columns += [f"{name}.{c.name}" for c in table.columns if c.name not in columns]
        indexes = {i["name"] for i in inspector.get_indexes(name)}
        drift.indexes += [index.name for index in table.indexes if index.name not in indexes]
    views = set(inspector.get_view_names())
    drift.views = [view.name for view in schema.VIEWS if view.name not in views or not _view_intact(inspector, view)]
    return drift


def _view_intact(inspector, view) -> bool:
    try:
        columns = {c["name"] for c in inspector.get_columns(view.name)}
    except sa.exc.DBAPIError:  # SQLite keeps a view whose table was dropped, and cannot describe it
        return False
    return {c.name for c in view.columns} <= columns


def migration_view_definitions() -> dict[str, str]:
    """name -> CREATE VIEW statement, exactly as the migrations leave them: read back from a
    scratch in-memory SQLite database upgraded to head (the migrations use the same SQL on both
    backends). Only run when a view needs repairing: it imports and runs Alembic."""
    from .db import upgrade

    scratch = sa.create_engine("sqlite://")
    try:
        upgrade(scratch)
        with scratch.connect() as conn:
            return dict(conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all())
    finally:
        scratch.dispose()


def _references(conn: Connection, table: str, present: set[str]) -> list[str]:
    """Stored rows that point at ``table`` through a foreign key: "observations (1234 rows)"."""
    found = []
    for other in schema.metadata.tables.values():
        if other.name == table or other.name not in present:
            continue
        for fk in other.foreign_keys:
            if fk.column.table.name == table:
                n = conn.execute(
                    sa.select(sa.func.count()).select_from(other).where(fk.parent.isnot(None))
                ).scalar_one()
                if n:
                    found.append(f"{other.name}.{fk.parent.name} ({n} rows)")
    return found


def repair(engine: Engine) -> list[str]:
    """Repair the drift that can be repaired; returns what was done, one phrase each. Raises
    SchemaError (nothing changed) when something cannot be repaired."""
    from .db import write_transaction

    with engine.connect() as conn:
        drift = find_drift(conn)
        if not drift:
            return []
        present = set(sa.inspect(conn).get_table_names())
        unsafe = {table: refs for table in drift.tables if (refs := _references(conn, table, present))}
    problems = [f"column {c} is missing" for c in drift.columns]
    problems += [f"table {t} is missing and stored rows refer to it: {', '.join(refs)}" for t, refs in unsafe.items()]
    if problems:
        raise SchemaError(
            f"the schema of {_where(engine)} has drifted from its migrations: {'; '.join(problems)}; "
            "tickcast cannot recreate the data these held: restore them from a backup"
        )
    definitions = migration_view_definitions() if drift.views else {}
    done = []
    with write_transaction(engine) as conn:
        for name in drift.tables:
            schema.metadata.tables[name].create(conn)  # with its indexes
            done.append(f"recreated the empty table {name}")
        for table in schema.metadata.tables.values():
            for index in table.indexes:
                if index.name in drift.indexes:
                    index.create(conn)
                    done.append(f"recreated the index {index.name}")
        for name in drift.views:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            conn.exec_driver_sql(definitions[name])
            done.append(f"recreated the view {name}")
    return done


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
