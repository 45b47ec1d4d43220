"""api key prefix, last use and revocation; rate limit counters; audit events; erased contacts and
deleted appointments

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 13:55:00
"""
from alembic import op
import sqlalchemy as sa
import automations.store.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefix', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', automations.store.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', automations.store.db.UTCDateTime(), nullable=True))

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', automations.store.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', automations.store.db.UTCDateTime(), nullable=True))

    op.create_table('rate_limit_counters',
    sa.Column('bucket', sa.String(length=200), nullable=False),
    sa.Column('window_no', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket')
    )
    op.create_table('audit_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('location_id', sa.String(length=32), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=100), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('entity_type', sa.String(length=50), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('at', automations.store.db.UTCDateTime(), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_location_at', ['location_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_location_at')
    op.drop_table('audit_events')
    op.drop_table('rate_limit_counters')
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch copy would drop and recreate these tables, which
    # rows in other tables still reference.
    op.execute('ALTER TABLE appointments DROP COLUMN deleted_at')
    op.execute('ALTER TABLE contacts DROP COLUMN erased_at')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('prefix')
