"""pipewarden_secrets: values pipewarden generates once per warehouse (the PII salt).

Created empty: the salt is generated on first use (`records.pii_salt`), never written by a
migration, so `pipewarden upgrade --sql` cannot print it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipewarden_secrets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipewarden_secrets")
