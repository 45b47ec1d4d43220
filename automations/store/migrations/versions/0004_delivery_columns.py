"""delivery state in columns

Also records on each message the appointment start and status it was written about (``about_start_at``,
``about_status``; existing rows take their appointment's current values), so delivery can withdraw a message
whose appointment has since moved or ended.

Moves ``messages.template["_delivery"]`` (provider status, receipt history, answered-by, resends in doubt,
the provider's detail) into real columns, both ways. A stored webhook/Slack response body (``response``) is
dropped on the way up: a remote body is never kept or shown.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

import automations.store.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_COLUMNS = ("provider_status", "answered_by", "resent_in_doubt", "status_history", "provider_detail")
_messages = sa.table(
    "messages", sa.column("id", sa.String), sa.column("template", sa.JSON),
    sa.column("provider_status", sa.String), sa.column("answered_by", sa.String),
    sa.column("resent_in_doubt", sa.Integer), sa.column("status_history", sa.JSON),
    sa.column("provider_detail", sa.JSON),
)
_KNOWN = {"provider_status", "answered_by", "resent_in_doubt", "history", "response"}


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_status', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('answered_by', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('resent_in_doubt', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('status_history', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('provider_detail', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('about_start_at', automations.store.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('about_status', sa.String(length=16), nullable=True))
    bind = op.get_bind()
    appointments = sa.table("appointments", sa.column("id", sa.String), sa.column("start_at", sa.DateTime),
                            sa.column("status", sa.String))
    messages = sa.table("messages", sa.column("appointment_id", sa.String), sa.column("about_start_at", sa.DateTime),
                        sa.column("about_status", sa.String))
    for column in ("start_at", "status"):
        bind.execute(messages.update().where(messages.c.appointment_id.is_not(None)).values({
            f"about_{column}": sa.select(appointments.c[column])
            .where(appointments.c.id == messages.c.appointment_id).scalar_subquery()}))
    for row in bind.execute(sa.select(_messages.c.id, _messages.c.template)).all():
        template = dict(row.template or {})
        delivery = template.pop("_delivery", None)
        if not isinstance(delivery, dict):
            continue
        detail = {k: v for k, v in delivery.items() if k not in _KNOWN}
        bind.execute(_messages.update().where(_messages.c.id == row.id).values(
            template=template, provider_status=delivery.get("provider_status"),
            answered_by=delivery.get("answered_by"), resent_in_doubt=int(delivery.get("resent_in_doubt") or 0),
            status_history=delivery.get("history"), provider_detail=detail or None,
        ))


def downgrade() -> None:
    bind = op.get_bind()
    query = sa.select(_messages.c.id, _messages.c.template, *(getattr(_messages.c, c) for c in _COLUMNS))
    for row in bind.execute(query).all():
        delivery = dict(row.provider_detail or {})
        for key, value in (("provider_status", row.provider_status), ("answered_by", row.answered_by),
                           ("resent_in_doubt", row.resent_in_doubt or None), ("history", row.status_history)):
            if value:
                delivery[key] = value
        if delivery:
            bind.execute(_messages.update().where(_messages.c.id == row.id).values(
                template={**(row.template or {}), "_delivery": delivery}))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('about_status')
        batch_op.drop_column('about_start_at')
        batch_op.drop_column('provider_detail')
        batch_op.drop_column('status_history')
        batch_op.drop_column('resent_in_doubt')
        batch_op.drop_column('answered_by')
        batch_op.drop_column('provider_status')
