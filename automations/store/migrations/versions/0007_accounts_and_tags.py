"""accounts (password hashes), workflow tags, who published a version

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-02 13:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_users_email', ['email'], unique=False)
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=True))
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_by', sa.String(length=32), nullable=True))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_enrollments_workflow_created', ['workflow_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_enrollments_workflow_state', ['workflow_id', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_workflow_state')
        batch_op.drop_index('ix_enrollments_workflow_created')
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.drop_column('published_by')
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_column('tags')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_email')
        batch_op.drop_column('password_hash')
