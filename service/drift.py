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
from sqlalchemy.engine import Connection

from . import schema


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
        drift.indexes += [str(index.name) for index in table.indexes if index.name not in indexes]
    views = set(inspector.get_view_names())
    drift.views = [view.name for view in schema.VIEWS if view.name not in views or not _view_intact(inspector, view)]
    return drift


def _view_intact(inspector, view) -> bool:
    try:
        columns = {c["name"] for c in inspector.get_columns(view.name)}
    except sa.exc.DBAPIError:  # SQLite keeps a view whose table was dropped, and cannot describe it
        return False
    return {c.name for c in view.columns} <= columns


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


def unrepairable(conn: Connection, drift: Drift) -> list[str]:
    """What of ``drift`` tickcast cannot repair, one phrase each: a missing column (its data is gone),
    a missing table that stored rows refer to (a recreated table would hand their ids to others)."""
    present = set(sa.inspect(conn).get_table_names())
    problems = [f"column {c} is missing" for c in drift.columns]
    for table in drift.tables:
        refs = _references(conn, table, present)
        if refs:
            problems.append(f"table {table} is missing and stored rows refer to it: {', '.join(refs)}")
    return problems


def apply_repairs(conn: Connection, drift: Drift, view_definitions: dict[str, str]) -> list[str]:
    """Inside the caller's write transaction: recreate the missing tables (empty), indexes and views
    (``view_definitions``: name -> CREATE VIEW, as the migrations leave them). Returns what was
    done, one phrase each."""
    done = []
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
        conn.exec_driver_sql(view_definitions[name])
        done.append(f"recreated the view {name}")
    return done
