"""pipewarden_sync_ledgers: per table, the key and content hashes of the rows the last sync
left near its watermark, so the next run skips re-read rows it already loaded (`sync.reread`).

Created empty: a table without a ledger syncs as before, merging every re-read row.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipewarden_sync_ledgers",
        sa.Column("table_name", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("shape", sa.String(64), nullable=False),
        sa.Column("entries", sa.LargeBinary, nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipewarden_sync_ledgers")
