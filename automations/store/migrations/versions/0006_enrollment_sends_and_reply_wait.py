"""enrollment send count and wait_reply state in columns

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02 13:50:00

``enrollments.sends`` counts the messages queued to the contact (the send cap); it is filled from the
outbox for existing runs. ``reply_channel``/``reply_since`` hold what a ``wait_reply`` listens for,
which older code read back from the enrollment log: waiting runs get it from their last ``waiting``
log line. Downgrade drops the columns; the log lines are still there for the old code.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import automations.store.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sends', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reply_channel', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('reply_since', automations.store.db.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE enrollments SET sends = (SELECT count(*) FROM messages "
        "WHERE messages.enrollment_id = enrollments.id AND messages.audience = 'contact')"
    )
    _move_reply_state()


def _move_reply_state() -> None:
    """Waiting ``wait_reply`` runs: channel and since from their latest ``waiting`` log line."""
    conn = op.get_bind()
    enrollments = sa.table('enrollments', sa.column('id', sa.String), sa.column('step_id', sa.String),
                           sa.column('state', sa.String), sa.column('wait_kind', sa.String),
                           sa.column('reply_channel', sa.String),
                           sa.column('reply_since', automations.store.db.UTCDateTime()))
    logs = sa.table('enrollment_logs', sa.column('id', sa.String), sa.column('enrollment_id', sa.String),
                    sa.column('step_id', sa.String), sa.column('outcome', sa.String), sa.column('at', sa.DateTime),
                    sa.column('detail', sa.JSON))
    waiting = conn.execute(sa.select(enrollments.c.id, enrollments.c.step_id)
                           .where(enrollments.c.state == 'waiting', enrollments.c.wait_kind == 'reply')).all()
    for enrollment_id, step_id in waiting:
        detail = conn.execute(
            sa.select(logs.c.detail)
            .where(logs.c.enrollment_id == enrollment_id, logs.c.step_id == step_id, logs.c.outcome == 'waiting')
            .order_by(logs.c.at.desc(), logs.c.id.desc()).limit(1)
        ).scalar()
        if not detail or 'since' not in detail or 'channel' not in detail:
            continue
        since = _parse(detail['since'])
        conn.execute(sa.update(enrollments).where(enrollments.c.id == enrollment_id)
                     .values(reply_channel=str(detail['channel'])[:8], reply_since=since))


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of ``enrollments`` would trip the foreign keys
    # that point at it.
    for column in ('reply_since', 'reply_channel', 'sends'):
        op.execute(f'ALTER TABLE enrollments DROP COLUMN {column}')
