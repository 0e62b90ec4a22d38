"""worker_jobs: the audit trail, one row per job attempt

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quickdapp.db.schema import JsonType, UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("data", JsonType, nullable=False),
        sa.Column("result", JsonType, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("job_id", "attempt", name="uq_worker_jobs_job_id_attempt"),
        sa.CheckConstraint("status IN ('completed', 'failed')", name="ck_worker_jobs_status"),
    )
    op.create_index("ix_worker_jobs_type", "worker_jobs", ["type"])
    op.create_index("ix_worker_jobs_status", "worker_jobs", ["status"])
    op.create_index("ix_worker_jobs_created_at", "worker_jobs", ["created_at"])
    op.create_index("ix_worker_jobs_user_id", "worker_jobs", ["user_id"])


def downgrade() -> None:
    op.drop_table("worker_jobs")
