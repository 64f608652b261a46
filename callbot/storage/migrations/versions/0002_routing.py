"""routing: transfer details on calls, live agent statuses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transfer_skill", sa.String(64), nullable=True))
        batch.add_column(sa.Column("transfer_result", sa.String(32), nullable=True))
        batch.add_column(sa.Column("transfer_wait_s", sa.Float(), nullable=True))
    op.create_table(
        "agent_status",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_status")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("transfer_wait_s")
        batch.drop_column("transfer_result")
        batch.drop_column("transfer_skill")
