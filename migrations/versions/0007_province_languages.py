"""province languages: what 128 speaks where, and in which language each call ended

- ``provinces.languages``: the languages offered in a province, in order, its default first
  (comma-separated codes; ``favad provinces languages 41 az,fa`` changes it). Seeded where a
  language other than Persian is widely spoken and has a complete catalog; every other province
  speaks Persian alone, as before.
- ``call_records.language``: the language a call ended in, for the monthly counts per language
  and province (a language is not identifying at province level; nothing else about the caller).

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# frozen here as migrations must be; db/reference.toml says the same for new installations
SEED = {
    "41": "az,fa",     # East Azerbaijan
    "44": "az,ku,fa",  # West Azerbaijan
    "45": "az,fa",     # Ardabil
    "24": "az,fa",     # Zanjan
    "87": "ku,fa",     # Kurdistan
    "83": "ku,fa",     # Kermanshah
    "84": "fa,ku",     # Ilam
    "58": "fa,ku",     # North Khorasan (Kurmanji of Khorasan)
    "61": "ar,fa",     # Khuzestan
}


def upgrade() -> None:
    with op.batch_alter_table("provinces") as batch:
        batch.add_column(sa.Column("languages", sa.String(64), nullable=False, server_default="fa"))
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("language", sa.String(16), nullable=True))
    provinces = sa.table("provinces", sa.column("area_code", sa.String), sa.column("languages", sa.String))
    for area_code, langs in SEED.items():
        op.execute(provinces.update().where(provinces.c.area_code == area_code).values(languages=langs))


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("provinces") as batch:
        batch.drop_column("languages")
