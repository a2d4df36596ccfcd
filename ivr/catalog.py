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


# every prompt a 128 call can play: the menu's, the catalog's and the generated dialplan's own
def needed(settings, warn=None) -> tuple[dict[str, str], list[str]]:
    """(texts, sorted ids); without a database the static prompts still come, and ``warn`` says so."""
    from db.engine import make_engine, make_sessionmaker
    from dialplan.render import prompt_texts
    from ivr.menu import load_menu

    menu = load_menu(settings.menu_file or None)
    try:
        engine = make_engine(settings.db_url)
        try:
            with make_sessionmaker(engine)() as s:
                texts = full_catalog(s)
        finally:
            engine.dispose()
    except Exception as e:
        if warn:
            warn(f"database unavailable ({type(e).__name__}): agency and indicator prompts left out")
        texts = static_catalog()
    texts = {**prompt_texts(), **texts}
    return texts, sorted(menu.prompt_ids() | set(texts))
