"""calendars: kinds, availability, buffers, notice, overrides, co-hosts, busy blocks; location slugs

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-02 13:26:58.155643
"""
from alembic import op
import sqlalchemy as sa
import automations.store.db


revision = '0008'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('busy_blocks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('start_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.Column('end_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('updated_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'source', 'external_id')
    )
    with op.batch_alter_table('busy_blocks', schema=None) as batch_op:
        batch_op.create_index('ix_busy_blocks_user_time', ['user_id', 'start_at'], unique=False)

    op.create_table('appointment_hosts',
    sa.Column('appointment_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('appointment_id', 'user_id')
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_past', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('recurrence_id', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_appointments_host_time', ['assigned_user_id', 'start_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_recurrence_id'), ['recurrence_id'], unique=False)

    with op.batch_alter_table('calendar_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('availability', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('date_overrides', sa.JSON(), nullable=True))

    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot_interval_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('buffer_before_minutes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('buffer_after_minutes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('min_notice_minutes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('booking_window_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('title_template', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('date_overrides', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slug', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint('uq_locations_slug', ['slug'])



def downgrade() -> None:
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_locations_slug', type_='unique')
        batch_op.drop_column('slug')

    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.drop_column('date_overrides')
        batch_op.drop_column('description')
        batch_op.drop_column('title_template')
        batch_op.drop_column('booking_window_days')
        batch_op.drop_column('min_notice_minutes')
        batch_op.drop_column('buffer_after_minutes')
        batch_op.drop_column('buffer_before_minutes')
        batch_op.drop_column('slot_interval_minutes')

    with op.batch_alter_table('calendar_members', schema=None) as batch_op:
        batch_op.drop_column('date_overrides')
        batch_op.drop_column('availability')
        batch_op.drop_column('priority')

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_recurrence_id'))
        batch_op.drop_index('ix_appointments_host_time')
        batch_op.drop_column('recurrence_id')
        batch_op.drop_column('record_past')

    op.drop_table('appointment_hosts')
    with op.batch_alter_table('busy_blocks', schema=None) as batch_op:
        batch_op.drop_index('ix_busy_blocks_user_time')

    op.drop_table('busy_blocks')
