"""Slack threads: an incident remembers its thread's parent message, an alert its run's batch.

`pipewarden_incidents` gains `slack_channel` and `slack_ts` (the parent message of the
incident's thread, replaced when a new parent is posted) and `announced_at` (when it was last
told in Slack, for reminders); `pipewarden_alerts` gains `batch` (the alerts one run raised,
so the failing checks of one table go out as one message). All nullable: rows written before
have no thread and are posted as before.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipewarden_incidents") as batch:
        batch.add_column(sa.Column("slack_channel", sa.String(200)))
        batch.add_column(sa.Column("slack_ts", sa.String(40)))
        batch.add_column(sa.Column("announced_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("pipewarden_alerts") as batch:
        batch.add_column(sa.Column("batch", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("pipewarden_alerts") as batch:
        batch.drop_column("batch")
    with op.batch_alter_table("pipewarden_incidents") as batch:
        batch.drop_column("announced_at")
        batch.drop_column("slack_ts")
        batch.drop_column("slack_channel")
