"""complaint ratings: the caller's 1-5 rating of a resolved complaint, one per complaint

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import db.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'complaint_ratings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('rating', sa.Integer(), nullable=False),
        sa.Column('at', db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'],
                                name=op.f('fk_complaint_ratings_complaint_id_complaints')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_ratings')),
        sa.UniqueConstraint('complaint_id', name=op.f('uq_complaint_ratings_complaint_id')),
    )


def downgrade() -> None:
    op.drop_table('complaint_ratings')
