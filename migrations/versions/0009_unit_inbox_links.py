"""unit inbox links: the generation of each unit's inbox links (issue 16)

``unit_inboxes``: one row per unit that was given an inbox link. A link carries the generation
it was made in and works while the row still holds it; `favad web inbox-revoke` steps it, so
every link the unit was given stops at once. When the last link was made and the last
revocation, for the admin.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
import db.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit_inboxes',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('issued_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['inspection_units.id'], name=op.f('fk_unit_inboxes_unit_id_inspection_units')),
    sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_unit_inboxes'))
    )


def downgrade() -> None:
    op.drop_table('unit_inboxes')
