"""audit at scale: rollups (per minute, per hour, per hour and duration bin) and history indexes

The four one-column indexes of 0001 served neither ordering nor combined filters: history
pages walk (created_at, id) newest first, so each filter shape gets an index ending in those.

Existing rows are rolled up by `quickdapp migrate` (and `quickdapp dev`) right after this
migration, through the same code as `quickdapp rollups rebuild`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_INDEXES = {
    "ix_worker_jobs_type": ["type"],
    "ix_worker_jobs_status": ["status"],
    "ix_worker_jobs_created_at": ["created_at"],
    "ix_worker_jobs_user_id": ["user_id"],
}
_NEW_INDEXES = {
    "ix_worker_jobs_created_at_id": ["created_at", "id"],
    "ix_worker_jobs_type_created_at_id": ["type", "created_at", "id"],
    "ix_worker_jobs_type_status_created_at_id": ["type", "status", "created_at", "id"],
}
# Failures and rows with a user are a few % of the table: partial indexes, as small.
_PARTIAL_INDEXES = {
    "ix_worker_jobs_failed_created_at_id": (["created_at", "id"], "status = 'failed'"),
    "ix_worker_jobs_user_id_created_at_id": (["user_id", "created_at", "id"], "user_id IS NOT NULL"),
}


def upgrade() -> None:
    op.create_table(
        "worker_job_minutes",
        sa.Column("minute", sa.BigInteger(), primary_key=True),
        sa.Column("type", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "worker_job_hours",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("type", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "worker_job_hour_bins",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("type", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("duration_bin", sa.SmallInteger(), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum_ms", sa.BigInteger(), nullable=False),
    )
    for name in _OLD_INDEXES:
        op.drop_index(name, table_name="worker_jobs")
    for name, columns in _NEW_INDEXES.items():
        op.create_index(name, "worker_jobs", columns)
    for name, (columns, where) in _PARTIAL_INDEXES.items():
        condition = sa.text(where)
        op.create_index(name, "worker_jobs", columns, postgresql_where=condition, sqlite_where=condition)


def downgrade() -> None:
    for name in [*_NEW_INDEXES, *_PARTIAL_INDEXES]:
        op.drop_index(name, table_name="worker_jobs")
    for name, columns in _OLD_INDEXES.items():
        op.create_index(name, "worker_jobs", columns)
    op.drop_table("worker_job_hour_bins")
    op.drop_table("worker_job_hours")
    op.drop_table("worker_job_minutes")
