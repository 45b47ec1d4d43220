"""availability indexes: covering host and slot indexes on appointments; co-hosts by user

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:40:00
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('ix_appointments_slot')
        batch_op.drop_index('ix_appointments_host_time')
        batch_op.create_index('ix_appointments_slot',
                              ['calendar_id', 'start_at', 'end_at', 'assigned_user_id', 'status'], unique=False)
        batch_op.create_index('ix_appointments_host_time',
                              ['assigned_user_id', 'start_at', 'end_at', 'calendar_id', 'status'], unique=False)
    with op.batch_alter_table('appointment_hosts', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_hosts_user', ['user_id', 'appointment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('appointment_hosts', schema=None) as batch_op:
        batch_op.drop_index('ix_appointment_hosts_user')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('ix_appointments_host_time')
        batch_op.drop_index('ix_appointments_slot')
        batch_op.create_index('ix_appointments_host_time', ['assigned_user_id', 'start_at'], unique=False)
        batch_op.create_index('ix_appointments_slot', ['calendar_id', 'start_at'], unique=False)
