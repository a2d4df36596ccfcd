"""Alembic, driven from code: `favad db upgrade` and the drift check the tests run."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from db.models import Base
import dispatch.models  # noqa: F401  (the dispatch tables belong to the same metadata)
import accountability.models  # noqa: F401  (units' actions, too)
import accountability.staff  # noqa: F401  (the staff's web accounts, sessions and audit trail)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", keyring=None) -> None:
    """Migrate to ``revision``; ``keyring`` (common.keyring) converts stored tracking codes (0005)."""
    cfg = alembic_config(url)
    cfg.attributes["keyring"] = keyring
    command.upgrade(cfg, revision)


def drift(engine) -> list:
    """Differences between the models and the migrated database (empty when in step)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)
