"""Prompt id -> text, per language: the static catalogs (``catalog.<lang>.toml``), the agency and
indicator names from the database (Persian; a catalog may name them in its language), and the
generated dialplan's own prompts. A prompt a language's catalog lacks is said in Persian."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Agency, Indicator

HERE = Path(__file__).parent
CATALOG = HERE / "catalog.fa.toml"
LANGUAGES = HERE / "languages.toml"
PERSIAN = "fa"
SELF_SPOKEN = "language-"  # language-<code>: each language offers itself, in every folder alike


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    name_en: str
    voice: str  # espeak-ng's; "" when it has none
    transliterated: bool = False  # ``say`` fields in the script espeak-ng reads


@dataclass(frozen=True)
class Spoken:
    """A prompt in one language: what is shown, what the synthesiser reads, whose words they are."""

    text: str
    say: str
    language: str  # the language the words are in: the folder's, or Persian as the fallback


@cache
def languages() -> dict[str, Language]:
    data = tomllib.loads(LANGUAGES.read_text(encoding="utf-8"))
    return {code: Language(code, v["name"], v["name_en"], v.get("voice", ""),
                           bool(v.get("transliterated", False))) for code, v in data.items()}


def catalog_path(language: str) -> Path:
    return HERE / f"catalog.{language}.toml"


def with_catalog() -> list[str]:
    """The languages that have a catalog, Persian first."""
    return [PERSIAN] + sorted(c for c in languages() if c != PERSIAN and catalog_path(c).exists())


def entries(language: str) -> dict[str, Spoken]:
    """A language's own catalog, nothing borrowed ({} when it has none)."""
    try:
        data = tomllib.loads(catalog_path(language).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    out = {}
    for pid, value in data.items():
        if isinstance(value, dict):  # {text = "...", say = "..."}: a transliterated language
            out[pid] = Spoken(value["text"], value.get("say", value["text"]), language)
        else:
            out[pid] = Spoken(value, value, language)
    return out


def static_catalog(language: str = PERSIAN) -> dict[str, str]:
    return {pid: e.text for pid, e in entries(language).items()}


def offers() -> dict[str, Spoken]:
    """language-<code> of every language that has a catalog, each in its own words."""
    return {f"{SELF_SPOKEN}{code}": e for code in with_catalog()
            for pid, e in entries(code).items() if pid == f"{SELF_SPOKEN}{code}"}


def spoken(language: str, persian: dict[str, str]) -> dict[str, Spoken]:
    """Every prompt of ``persian`` (the full Persian texts) in ``language``, Persian where its
    catalog lacks it; language-<code> prompts in their own language whatever the folder."""
    own = entries(language)
    out = {pid: own.get(pid) or Spoken(text, text, PERSIAN) for pid, text in persian.items()}
    out.update({pid: e for pid, e in own.items() if pid not in out})
    out.update(offers())
    return out


def full_catalog(s: Session, language: str = PERSIAN) -> dict[str, str]:
    texts = static_catalog()
    texts.update({f"agency-{code}": name for code, name in s.execute(select(Agency.code, Agency.name_fa))})
    texts.update({f"indicator-{code}": name
                  for code, name in s.execute(select(Indicator.code, Indicator.name_fa))})
    if language == PERSIAN:
        return {**texts, **{pid: e.text for pid, e in offers().items()}}
    return {pid: e.text for pid, e in spoken(language, texts).items()}


def missing(language: str, ids) -> list[str]:
    """The prompts ``language``'s catalog has no words for (said in Persian instead)."""
    own = entries(language)
    return sorted(i for i in ids if i not in own and not i.startswith(SELF_SPOKEN))


# every prompt a 128 call can play: the menu's, the catalog's and the generated dialplan's own
def needed(settings, warn=None) -> tuple[dict[str, str], list[str]]:
    """(Persian texts, sorted ids); without a database the static prompts still come, and
    ``warn`` says so. ``spoken`` gives them in another language."""
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
        texts = {**static_catalog(), **{pid: e.text for pid, e in offers().items()}}
    texts = {**prompt_texts(), **texts}
    return texts, sorted(menu.prompt_ids() | set(texts))
