"""overflow mailbox: messages and their audit trail

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("called_number", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("overflow_reason", sa.String(32), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("audio_path", sa.String(256), nullable=True),
        sa.Column("audio_state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("transcription", sa.String(24), nullable=False),
        sa.Column("transcription_attempts", sa.Integer(), nullable=False),
        sa.Column("transcription_error", sa.Text(), nullable=True),
        sa.Column("transcription_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transcription_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=True),
        sa.Column("transcript_raw", sa.Text(), nullable=True),
        sa.Column("words_raw", sa.JSON(), nullable=True),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("classified", sa.Boolean(), nullable=False),
        sa.Column("detected_reason", sa.String(64), nullable=True),
        sa.Column("reason_confidence", sa.Float(), nullable=True),
        sa.Column("corrected_reason", sa.String(64), nullable=True),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("notify_state", sa.String(16), nullable=False),
        sa.Column("notify_attempts", sa.Integer(), nullable=False),
        sa.Column("notify_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("call_id", "caller_number", "created_at", "overflow_reason", "status", "assignee"):
        op.create_index(f"ix_mailbox_items_{column}", "mailbox_items", [column])
    op.create_index("ix_mailbox_items_transcription", "mailbox_items", ["transcription"])
    op.create_index("ix_mailbox_items_detected_reason", "mailbox_items", ["detected_reason"])
    op.create_table(
        "mailbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("mailbox_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_mailbox_events_item_id", "mailbox_events", ["item_id"])


def downgrade() -> None:
    op.drop_table("mailbox_events")
    op.drop_table("mailbox_items")
