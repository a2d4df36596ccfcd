"""Every prompt a 128 call can play, with its Persian text: the menu's, the catalog's (agency and
indicator names from the database), and the ones the generated dialplan plays itself."""
from __future__ import annotations


def needed(settings, warn=None) -> tuple[dict[str, str], list[str]]:
    """(texts, sorted ids); without a database the static prompts still come, and ``warn`` says so."""
    from db.engine import make_engine, make_sessionmaker
    from dialplan.render import prompt_texts
    from ivr.catalog import full_catalog, static_catalog
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
