"""pipewarden_table_owners: each table's owner, which the dashboards filter and label by.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipewarden_table_owners",
        sa.Column("table_name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(500)),
        sa.Column("owner_name", sa.String(500)),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipewarden_table_owners")
