"""dispatch outbox and inspection units

Inspection units and their contacts (routing), each complaint's route and escalation clock,
and the outbox of messages to units. Reviewed from autogenerate; batch mode is for SQLite and
does plain ALTERs on PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:48:25.728057
"""
from alembic import op
import sqlalchemy as sa
import db.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inspection_units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name_fa', sa.String(length=200), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('province_id', sa.Integer(), nullable=True),
    sa.Column('hours', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_inspection_units_agency_id_agencies')),
    sa.ForeignKeyConstraint(['province_id'], ['provinces.id'], name=op.f('fk_inspection_units_province_id_provinces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_units')),
    sa.UniqueConstraint('code', name=op.f('uq_inspection_units_code'))
    )
    with op.batch_alter_table('inspection_units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspection_units_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspection_units_province_id'), ['province_id'], unique=False)

    op.create_table('unit_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['inspection_units.id'], name=op.f('fk_unit_contacts_unit_id_inspection_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_contacts')),
    sa.UniqueConstraint('unit_id', 'channel', 'address', name=op.f('uq_unit_contacts_unit_id'))
    )
    op.create_table('complaint_routes',
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('escalation_unit_id', sa.Integer(), nullable=True),
    sa.Column('flag', sa.String(length=20), nullable=True),
    sa.Column('clock_from', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_complaint_routes_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['escalation_unit_id'], ['inspection_units.id'], name=op.f('fk_complaint_routes_escalation_unit_id_inspection_units')),
    sa.ForeignKeyConstraint(['unit_id'], ['inspection_units.id'], name=op.f('fk_complaint_routes_unit_id_inspection_units')),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_complaint_routes'))
    )
    with op.batch_alter_table('complaint_routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_routes_clock_from'), ['clock_from'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_routes_flag'), ['flag'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('created_at', db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=80), nullable=True),
    sa.Column('lease_until', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_outbox_messages_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['unit_id'], ['inspection_units.id'], name=op.f('fk_outbox_messages_unit_id_inspection_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('complaint_id', 'kind', 'channel', 'recipient', name=op.f('uq_outbox_messages_complaint_id'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_due', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_due')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_complaint_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('complaint_routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_routes_flag'))
        batch_op.drop_index(batch_op.f('ix_complaint_routes_clock_from'))

    op.drop_table('complaint_routes')
    op.drop_table('unit_contacts')
    with op.batch_alter_table('inspection_units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspection_units_province_id'))
        batch_op.drop_index(batch_op.f('ix_inspection_units_agency_id'))

    op.drop_table('inspection_units')
