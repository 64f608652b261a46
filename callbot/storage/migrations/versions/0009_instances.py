"""several instances on one database: who carries a call, waiting calls shared, e-mails sent once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("instance", sa.String(128), nullable=True))
    with op.batch_alter_table("mailbox_items") as batch:
        batch.add_column(sa.Column("notify_lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "queue_waiting",
        sa.Column("call_id", sa.String(32), primary_key=True),
        sa.Column("bot", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queue_waiting_expires_at", "queue_waiting", ["expires_at"])
    op.create_index("ix_queue_waiting_bot_queue", "queue_waiting", ["bot", "queue"])


def downgrade() -> None:
    op.drop_index("ix_queue_waiting_bot_queue", "queue_waiting")
    op.drop_index("ix_queue_waiting_expires_at", "queue_waiting")
    op.drop_table("queue_waiting")
    with op.batch_alter_table("mailbox_items") as batch:
        batch.drop_column("notify_lease_until")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("instance")
