"""caller protection: case numbers, tracking codes as keyed hashes, unlinkable caller counts

- Complaints get a case number of their own (what units, operators and staff see) and keep the
  caller's tracking code only as a keyed hash (``common.keyring.code_hash``); existing codes are
  hashed here, so they keep working for their callers. Needs the tracking key: ``favad db
  upgrade`` passes the keyring; a database with complaints and no keyring is refused.
- ``caller_activity`` goes: it was written in the same transaction as the call record, so its
  hashes could be paired with calls. Its counts are dropped with the key they were made with.
  ``caller_counts`` (per day, no id) is written apart by the ledger.
- Call records keep their start time to the minute only.

Revision ID: 0005
Revises: 0004
"""
import secrets

from alembic import context, op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def _case_number() -> str:
    # the same form as common.tracking.new_case_number, frozen here as migrations must be
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{body[:4]}-{body[4:]}"


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, tracking_code FROM complaints")).all()
    keyring = context.config.attributes.get("keyring")
    if rows and keyring is None:  # before any change: SQLite's DDL is not transactional
        raise RuntimeError("converting tracking codes needs the tracking key: run `favad db upgrade`")
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_number', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=True))
    if rows:
        from common.keyring import code_hash
        key, taken = keyring.tracking_key(), set()
        for id_, code in rows:
            while (case := _case_number()) in taken:
                pass
            taken.add(case)
            bind.execute(sa.text("UPDATE complaints SET case_number = :c, code_hash = :h WHERE id = :i"),
                         {"c": case, "h": code_hash(key, code), "i": id_})
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.alter_column('case_number', existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column('code_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_complaints_case_number'), ['case_number'])
        batch_op.create_unique_constraint(batch_op.f('uq_complaints_code_hash'), ['code_hash'])
        batch_op.drop_constraint(batch_op.f('uq_complaints_tracking_code'), type_='unique')
        batch_op.drop_column('tracking_code')

    op.drop_table('caller_activity')
    op.create_table('caller_counts',
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('caller_hash', sa.String(length=64), nullable=False),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('guesses', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('period', 'day', 'caller_hash', name=op.f('pk_caller_counts'))
    )
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE call_records SET started_at = date_trunc('minute', started_at)")
    else:
        op.execute("UPDATE call_records SET started_at = strftime('%Y-%m-%d %H:%M:00.000000', started_at)")


def downgrade() -> None:
    raise RuntimeError("0005 cannot be undone: the tracking codes exist only as hashes now")
