"""Prompt id -> Persian text: the static catalog plus agency and indicator names from the database."""
from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Agency, Indicator

CATALOG = Path(__file__).with_name("catalog.fa.toml")


def static_catalog() -> dict[str, str]:
    return tomllib.loads(CATALOG.read_text(encoding="utf-8"))


def full_catalog(s: Session) -> dict[str, str]:
    texts = static_catalog()
    texts.update({f"agency-{code}": name for code, name in s.execute(select(Agency.code, Agency.name_fa))})
    texts.update({f"indicator-{code}": name
                  for code, name in s.execute(select(Indicator.code, Indicator.name_fa))})
    return texts
