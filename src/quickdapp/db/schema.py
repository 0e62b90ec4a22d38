"""Tables of the system, as SQLAlchemy models; Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use a timezone-aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonType, datetime: UtcDateTime}


class WorkerJob(Base):
    """One attempt of one job: the durable audit trail (BullMQ itself keeps only recent history)."""

    __tablename__ = "worker_jobs"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt", name="uq_worker_jobs_job_id_attempt"),
        CheckConstraint("status IN ('completed', 'failed')", name="ck_worker_jobs_status"),
        # History pages walk these newest first by (created_at, id), one per filter shape
        # (quickdapp.audit.history); the time index also bounds cleanup and the window edges.
        Index("ix_worker_jobs_created_at_id", "created_at", "id"),
        Index("ix_worker_jobs_type_created_at_id", "type", "created_at", "id"),
        Index("ix_worker_jobs_type_status_created_at_id", "type", "status", "created_at", "id"),
        # Partial: failures and rows with a user are a few % of the table, the indexes as small.
        Index(
            "ix_worker_jobs_failed_created_at_id",
            "created_at",
            "id",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        Index(
            "ix_worker_jobs_user_id_created_at_id",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("user_id IS NOT NULL"),
            sqlite_where=text("user_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[Any] = mapped_column(JsonType)
    result: Mapped[Any | None] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WorkerJobMinute(Base):
    """Attempts that ended in one minute, per type and status: the series and window counts.

    Kept by quickdapp.audit.rollups in the transaction that stores the attempts, so a chart or
    a count over days reads thousands of these instead of millions of worker_jobs rows.
    """

    __tablename__ = "worker_job_minutes"

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Whole minutes since 1970-01-01 UTC of created_at."""
    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger)


class WorkerJobHour(Base):
    """Attempts that ended in one hour, per type and status: the series of long windows.

    Thirty days are ~3,000 of these (one hour holds ~1 to 5), against ~90,000 minutes.
    """

    __tablename__ = "worker_job_hours"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Whole hours since 1970-01-01 UTC of created_at."""
    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger)


class WorkerJobHourBin(Base):
    """Attempts that ended in one hour, per type, status and duration bin: a histogram.

    Percentiles over long windows come from these (quickdapp.audit.histogram defines the bins).
    """

    __tablename__ = "worker_job_hour_bins"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Whole hours since 1970-01-01 UTC of created_at."""
    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    duration_bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A user of the dApp, known by wallet address (stored lower-case, so lookups are exact)."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("wallet_address", name="uq_users_wallet_address"),
        CheckConstraint("wallet_address = lower(wallet_address)", name="ck_users_wallet_lower"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    wallet_address: Mapped[str] = mapped_column(String(42))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Notification(Base):
    """A message for one user. Chain events carry their key (chain, tx, log index, kind), unique,
    so one event can never notify twice however often its blocks are read."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", "kind", name="uq_notifications_event"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[Any] = mapped_column(JsonType)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    log_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(50))


class KeyValue(Base):
    """A small durable value of the system, by key: e.g. the last block watchChain read per chain."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
