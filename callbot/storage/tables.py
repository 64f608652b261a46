"""ORM tables. Every schema change comes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and always read back with its zone: SQLite keeps no zone, and comparing or
    formatting a naive time next to an aware one is a bug waiting to happen."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_call_id: Mapped[str] = mapped_column(String(64), index=True)
    from_number: Mapped[str] = mapped_column(String(64), default="")
    to_number: Mapped[str] = mapped_column(String(64), default="")
    bot: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    status: Mapped[str] = mapped_column(String(16), default="ringing", index=True)
    """ringing, in_progress, completed; expired (no stream ever came) or interrupted (cut off by a crash)"""
    streams_allowed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Media streams the call may still open: each is granted once (the webhook, a stream to take a message)."""
    seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """Last time the instance carrying the call said it was still on; a call no one carries is interrupted."""
    instance: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The instance carrying the call's stream (``CALLBOT_INSTANCE_ID``)."""
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    outcome_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transfer_queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transfer_target: Mapped[str | None] = mapped_column(String(256), nullable=True)
    transfer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The transfer's whole target (type, value, caller id), as the telephony carries it out."""
    transport: Mapped[str | None] = mapped_column(String(16), nullable=True)
    line_codec: Mapped[str | None] = mapped_column(String(24), nullable=True)
    """The line's audio as negotiated or configured: ``ulaw/8000``, ``alaw/8000``, ``slin/16000``..."""
    transfer_skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transfer_result: Mapped[str | None] = mapped_column(String(32), nullable=True)
    transfer_wait_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    stream_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    first_audio_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    degraded: Mapped[list[str]] = mapped_column(JSON, default=list)

    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="call", order_by="TurnRow.seq", cascade="all, delete-orphan"
    )


class TurnRow(Base):
    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    entities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)

    call: Mapped[CallRow] = relationship(back_populates="turns")


class WaitingCallRow(Base):
    """A call handed to a queue that has not left it yet, as every instance sees it: waiting counts and
    estimated waits are shared. A row the provider never reports on expires with the queue's longest wait."""

    __tablename__ = "queue_waiting"
    __table_args__ = (Index("ix_queue_waiting_bot_queue", "bot", "queue"),)

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bot: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AgentStatusRow(Base):
    """The last status an agent's ACD or softphone reported; the bot folder gives the status until then."""

    __tablename__ = "agent_status"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    language: Mapped[str] = mapped_column(String(8), default="fr")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SessionRow(Base):
    """A console login; ``id`` is the SHA-256 of the cookie's token."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiTokenRow(Base):
    """A token for programs (an ACD reporting agent statuses...); ``id`` is the SHA-256 of the token."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class MailboxItemRow(Base):
    """A message left by a caller nobody could take (docs/mailbox.md)."""

    __tablename__ = "mailbox_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # no foreign key: a message recorded while the database was down is filed later, its call row may be missing
    call_id: Mapped[str] = mapped_column(String(32), index=True)
    caller_number: Mapped[str] = mapped_column(String(64), default="", index=True)
    called_number: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    overflow_reason: Mapped[str] = mapped_column(String(32), index=True)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    audio_path: Mapped[str | None] = mapped_column(String(256), nullable=True)
    audio_state: Mapped[str] = mapped_column(String(16))  # recording, complete, recovered, purged
    status: Mapped[str] = mapped_column(String(16), index=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    transcription: Mapped[str] = mapped_column(String(24), index=True)
    transcription_attempts: Mapped[int] = mapped_column(Integer, default=0)
    transcription_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    transcription_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    transcription_lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    words: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    transcript_raw: Mapped[str | None] = mapped_column(Text, nullable=True)
    words_raw: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    masked: Mapped[list[str]] = mapped_column(JSON, default=list)
    classified: Mapped[bool] = mapped_column(Boolean, default=False)
    detected_reason: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reason_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    corrected_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notify_state: Mapped[str] = mapped_column(String(16), default="off")  # off, pending, sending, sent, failed
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    notify_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    notify_lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """While an instance sends the e-mail (state ``sending``): the others leave it alone until then."""
    notify_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    events: Mapped[list[MailboxEventRow]] = relationship(
        back_populates="item", order_by="MailboxEventRow.id", cascade="all, delete-orphan"
    )


class MailboxEventRow(Base):
    """The audit trail of a message: who did what, when."""

    __tablename__ = "mailbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("mailbox_items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    item: Mapped[MailboxItemRow] = relationship(back_populates="events")


class CorrectionRow(Base):
    """A (text, intent) pair a trainee proposed by correcting a message's reason; ops accept it into the bot's
    training data, or reject it."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(64))
    proposed_by: Mapped[str] = mapped_column(String(64), index=True)
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, accepted, rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ConfigVersionRow(Base):
    """One saved change of a bot folder file: who, when, the file before and after (for the diff and revert)."""

    __tablename__ = "config_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bot: Mapped[str] = mapped_column(String(64), index=True)
    file: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    author: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(256), default="")
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)


class StatsHourRow(Base):
    """Counters of what the bot did, per hour (UTC): the dashboard reads these instead of every call and turn."""

    __tablename__ = "stats_hourly"

    hour: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
