"""Run lease: who holds it, identified by more than a pid.

A pid alone does not identify a process: a restarted container gives `tickcast serve` the same small
pid (and the same host name) as the run it killed, so that run's stale lease looked alive. The lease
row now also holds

- ``process_start``: the holder's start time, in clock ticks since boot (``/proc/<pid>/stat``, field
  22): a live process with the lease's pid but another start time is not its holder;
- ``boot_id``: the kernel's boot id (``/proc/sys/kernel/random/boot_id``): with the host name, which
  machine (and boot) the pid and start time belong to.

Both are NULL in a lease written by an older tickcast (or where /proc is not available).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The same texts are the columns' ``comment`` in service/schema.py (the drift test compares them).
COMMENTS = {
    "process_start": "the holder's start time in clock ticks since boot (/proc/<pid>/stat): with pid, the process",
    "boot_id": "the holder's kernel boot id (/proc/sys/kernel/random/boot_id): with host, the machine and boot",
}


def upgrade() -> None:
    op.add_column("run_lease", sa.Column("process_start", sa.BigInteger, comment=COMMENTS["process_start"]))
    op.add_column("run_lease", sa.Column("boot_id", sa.String(64), comment=COMMENTS["boot_id"]))


def downgrade() -> None:
    with op.batch_alter_table("run_lease") as batch:
        batch.drop_column("boot_id")
        batch.drop_column("process_start")
