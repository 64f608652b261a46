"""hourly counters for the dashboard, filled from the calls already stored

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("key", sa.String(96), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    from callbot.stats import rebuild_in

    rebuild_in(op.get_bind())


def downgrade() -> None:
    op.drop_table("stats_hourly")
