"""calls record their transport and line codec, and a transfer's whole target (caller id included)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transport", sa.String(16), nullable=True))
        batch.add_column(sa.Column("line_codec", sa.String(24), nullable=True))
        batch.add_column(sa.Column("transfer", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("transfer")
        batch.drop_column("line_codec")
        batch.drop_column("transport")
