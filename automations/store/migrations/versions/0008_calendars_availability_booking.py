"""calendars: kinds, availability, buffers, notice, overrides, co-hosts, busy blocks; location slugs; Google Calendar

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-02 13:26:58.155643
"""
from alembic import op
import sqlalchemy as sa
import automations.store.db


revision = '0008'
down_revision = '0007'
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

    # Google Calendar: connections, linked calendars' sync state, appointments' events.
    op.create_table('google_calendar_syncs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('google_calendar_id', sa.String(length=300), nullable=False),
    sa.Column('sync_token', sa.Text(), nullable=True),
    sa.Column('channel_id', sa.String(length=64), nullable=True),
    sa.Column('channel_token_enc', sa.Text(), nullable=True),
    sa.Column('channel_resource_id', sa.String(length=300), nullable=True),
    sa.Column('channel_expires_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('next_sync_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('updated_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id'),
    sa.UniqueConstraint('user_id', 'google_calendar_id')
    )
    with op.batch_alter_table('google_calendar_syncs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_calendar_syncs_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_google_syncs_due', ['next_sync_at'], unique=False)

    op.create_table('google_connections',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('location_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('access_token_enc', sa.Text(), nullable=True),
    sa.Column('refresh_token_enc', sa.Text(), nullable=True),
    sa.Column('expires_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('scope', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('created_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id')
    )
    with op.batch_alter_table('google_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_connections_location_id'), ['location_id'], unique=False)

    op.create_table('google_event_links',
    sa.Column('appointment_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('google_calendar_id', sa.String(length=300), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('etag', sa.String(length=200), nullable=True),
    sa.Column('wanted_version', sa.Integer(), nullable=False),
    sa.Column('written_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', automations.store.db.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', automations.store.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('appointment_id')
    )
    with op.batch_alter_table('google_event_links', schema=None) as batch_op:
        batch_op.create_index('ix_google_event_links_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_google_event_links_event', ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_google_event_links_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('calendar_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('google_calendar_id', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calendar_members', schema=None) as batch_op:
        batch_op.drop_column('google_calendar_id')

    with op.batch_alter_table('google_event_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_event_links_user_id'))
        batch_op.drop_index('ix_google_event_links_event')
        batch_op.drop_index('ix_google_event_links_due')

    op.drop_table('google_event_links')
    with op.batch_alter_table('google_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_connections_location_id'))

    op.drop_table('google_connections')
    with op.batch_alter_table('google_calendar_syncs', schema=None) as batch_op:
        batch_op.drop_index('ix_google_syncs_due')
        batch_op.drop_index(batch_op.f('ix_google_calendar_syncs_user_id'))

    op.drop_table('google_calendar_syncs')
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
