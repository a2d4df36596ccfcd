"""unit actions and report card outbox

The typed details of what inspection units did (one row per complaint event: the acting unit,
a resolution's outcome, the unit a complaint was forwarded to), and the outbox of report cards
to the agencies. Reviewed from autogenerate.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:33:36.415444
"""
from alembic import op
import sqlalchemy as sa
import db.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('message', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('created_at', db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_report_messages_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_messages')),
    sa.UniqueConstraint('kind', 'period', 'agency_id', 'recipient', name=op.f('uq_report_messages_kind'))
    )
    with op.batch_alter_table('report_messages', schema=None) as batch_op:
        batch_op.create_index('ix_report_messages_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('unit_actions',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('to_unit_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_unit_actions_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['event_id'], ['complaint_events.id'], name=op.f('fk_unit_actions_event_id_complaint_events')),
    sa.ForeignKeyConstraint(['to_unit_id'], ['inspection_units.id'], name=op.f('fk_unit_actions_to_unit_id_inspection_units')),
    sa.ForeignKeyConstraint(['unit_id'], ['inspection_units.id'], name=op.f('fk_unit_actions_unit_id_inspection_units')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_unit_actions'))
    )
    with op.batch_alter_table('unit_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_actions_complaint_id'), ['complaint_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('unit_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_actions_complaint_id'))

    op.drop_table('unit_actions')
    with op.batch_alter_table('report_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_report_messages_due')

    op.drop_table('report_messages')
