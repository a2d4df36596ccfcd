"""Templates + database -> the extensions include file. Same input, same bytes (no timestamps),
so `favad dialplan diff` shows only real changes."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jinja2
from sqlalchemy import select

from db.models import Province

HERE = Path(__file__).parent
TEMPLATE = "favad-128.conf.j2"
VERSION_SLOT = "@@VERSION@@"
_URL = re.compile(r"^(h?)agi://[A-Za-z0-9.\-]+(:\d{1,5})?/[A-Za-z0-9._\-/]+(?:\?[A-Za-z0-9._=&\-]*)?$")
_NAME = re.compile(r"^[A-Za-z0-9._\-/]+$")
_QUEUE = re.compile(r"^[A-Za-z0-9_\-]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z]+)?$")
_EXTEN = re.compile(r"^(?:[0-9*#+]+|_[0-9XNZ.!\[\]\-*#+]+)$")


class DialplanError(Exception):
    """The settings or the templates cannot make a dialplan; the message says what to fix."""


@dataclass(frozen=True)
class Trunk:
    area_code: str
    slug: str
    name_en: str
    name_fa: str
    status: str
    language: str = "fa"  # its default: what the caller hears first, and the apology if the IVR is away


def prompt_texts() -> dict[str, str]:
    """Persian texts of the prompts the dialplan plays itself."""
    return tomllib.loads((HERE / "prompts.fa.toml").read_text(encoding="utf-8"))


def default_path(settings) -> Path:
    return Path(settings.dialplan_file or Path(settings.data_dir, "asterisk", "favad-128.conf")).resolve()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _comment(text: str) -> str:
    return " ".join(str(text).split())  # one line: a newline would end the comment


def trunks(session, today: dt.date) -> list[Trunk]:
    from rollout.dates import jalali_date

    out = []
    for p in session.scalars(select(Province)):
        if p.activated_on is None:
            status = "not live yet (the IVR tells callers so)"
        else:
            verb = "live since" if p.activated_on <= today else "live from"
            status = f"{verb} {p.activated_on.isoformat()} ({jalali_date(p.activated_on)})"
        language = (p.languages or "fa").split(",")[0].strip()
        if not _LANGUAGE.match(language):
            raise DialplanError(f"province {p.area_code}: {language!r} is not a language code "
                                f"(favad provinces languages {p.area_code} fa)")
        out.append(Trunk(p.area_code, slug(p.name_en), _comment(p.name_en), _comment(p.name_fa), status,
                         language))
    return sorted(out, key=lambda t: (len(t.area_code), t.area_code))


def agi_urls(settings) -> list[str]:
    """The FastAGI servers in the order Asterisk tries them: the main one, then each failover.

    ``hagi://name/script`` makes Asterisk itself try the targets of the SRV records
    ``_agi._tcp.name`` in turn; with a port it would skip the lookup, so none is allowed."""
    host = settings.listen_host if settings.listen_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    urls = [settings.fastagi_url or f"agi://{host}:{settings.listen_port}/{settings.script}"]
    urls += [u.strip() for u in settings.fastagi_failover_url.split(",") if u.strip()]
    for url in urls:
        m = _URL.match(url)
        if not m:
            raise DialplanError(f"not a FastAGI URL: {url!r} (agi://host:port/script or hagi://name/script)")
        if m.group(1) and m.group(2):
            raise DialplanError(f"{url!r}: a port turns Asterisk's SRV lookup off (hagi://name/script, "
                                f"the SRV records _agi._tcp.name give hosts and ports)")
    return urls


def render(settings, trunk_list: list[Trunk]) -> str:
    """The include file for these trunks under these settings."""
    if not _EXTEN.match(settings.dialplan_extension):
        raise DialplanError(f"dialplan_extension {settings.dialplan_extension!r} is not an extension")
    if settings.classic_agi and not _NAME.match(settings.classic_agi):
        raise DialplanError(f"classic_agi {settings.classic_agi!r} is not a script name")
    if settings.operator_queue and not _QUEUE.match(settings.operator_queue):
        raise DialplanError(f"operator_queue {settings.operator_queue!r} is not a queue name")
    slugs = [t.slug for t in trunk_list]
    if len(set(slugs)) != len(slugs) or not all(slugs):
        raise DialplanError("two provinces give the same context name (check their English names)")
    loaders = [jinja2.FileSystemLoader(str(HERE / "templates"))]
    if settings.dialplan_templates:
        loaders.insert(0, jinja2.FileSystemLoader(settings.dialplan_templates))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)
    try:
        text = env.get_template(TEMPLATE).render(
            provinces=trunk_list, extension=settings.dialplan_extension, agi_urls=agi_urls(settings),
            classic_agi=settings.classic_agi, queue=settings.operator_queue,
            file_name=default_path(settings).name, version=VERSION_SLOT)
    except jinja2.TemplateError as e:
        raise DialplanError(f"template {TEMPLATE}: {e}") from None
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return text.replace(VERSION_SLOT, version)


def version_of(text: str) -> str | None:
    m = re.search(r"NoOp\(favad dialplan ([0-9a-f]{12})\)", text or "")
    return m.group(1) if m else None
