"""one outbox and office clocks

Report cards become outbox messages like any other (issue 18): a card is kept once as a
document (``outbox_documents``: aggregates only) and each recipient's message points at it, so
outbox rows still hold no text; ``report_messages`` goes, its pending cards moved over (sent
and dead ones are history the outbox did not keep either). Complaint routes get
``escalate_at``: the escalation deadline in the unit's working time, set by the dispatcher.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:36:19.320177
"""
import email
import email.policy
from email.header import decode_header, make_header

from alembic import op
import sqlalchemy as sa
import db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _card(message: bytes) -> dict:
    """A stored card email's parts (the same for each recipient of one agency and month)."""
    msg = email.message_from_bytes(message, policy=email.policy.compat32)
    parts = {"text": "", "html": "", "pdf": b"", "filename": "card.pdf"}
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/plain":
            parts["text"] = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        elif kind == "text/html":
            parts["html"] = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        elif kind == "application/pdf":
            parts["pdf"], parts["filename"] = part.get_payload(decode=True), part.get_filename() or "card.pdf"
    parts["subject"] = str(make_header(decode_header(msg["Subject"] or "")))
    return parts


def _move_pending_cards() -> None:
    conn = op.get_bind()
    md = sa.MetaData()
    old = sa.Table("report_messages", md, autoload_with=conn)
    agencies = sa.Table("agencies", md, autoload_with=conn)
    docs = sa.Table("outbox_documents", md, autoload_with=conn)
    out = sa.Table("outbox_messages", md, autoload_with=conn)
    rows = conn.execute(sa.select(old, agencies.c.code).join(agencies, agencies.c.id == old.c.agency_id)
                        .where(old.c.status == "pending").order_by(old.c.id)).mappings().all()
    made: dict[str, int] = {}
    for r in rows:
        key = f"card.{r['period']}.{r['code']}"
        if key not in made:
            made[key] = conn.execute(sa.insert(docs).values(
                kind="report_card", key=key, created_at=r["created_at"], **_card(r["message"]))
                .returning(docs.c.id)).scalar_one()
        conn.execute(sa.insert(out).values(
            document_id=made[key], kind="report_card", channel="email", recipient=r["recipient"],
            status="pending", tries=r["tries"], created_at=r["created_at"],
            next_attempt_at=r["next_attempt_at"]))


def upgrade() -> None:
    op.create_table('outbox_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('filename', sa.String(length=120), nullable=False),
    sa.Column('created_at', db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_documents')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_documents_key'))
    )
    with op.batch_alter_table('complaint_routes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalate_at', db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_complaint_routes_escalate_at'), ['escalate_at'], unique=False)

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_id', sa.Integer(), nullable=True))
        batch_op.alter_column('complaint_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('unit_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_outbox_messages_document_id'), ['document_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_outbox_messages_document_id'), ['document_id', 'channel', 'recipient'])
        batch_op.create_foreign_key(batch_op.f('fk_outbox_messages_document_id_outbox_documents'), 'outbox_documents', ['document_id'], ['id'])

    _move_pending_cards()
    with op.batch_alter_table('report_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_report_messages_due')

    op.drop_table('report_messages')



def downgrade() -> None:
    # report cards waiting in the outbox are not moved back: send them first
    op.execute("DELETE FROM outbox_messages WHERE document_id IS NOT NULL")
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_messages_document_id_outbox_documents'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_outbox_messages_document_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_document_id'))
        batch_op.alter_column('unit_id',
               existing_type=sa.Integer(),
               nullable=False)
        batch_op.alter_column('complaint_id',
               existing_type=sa.Integer(),
               nullable=False)
        batch_op.drop_column('document_id')

    with op.batch_alter_table('complaint_routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_routes_escalate_at'))
        batch_op.drop_column('escalate_at')

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

    op.drop_table('outbox_documents')
