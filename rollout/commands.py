"""`favad provinces activate|deactivate`: added to the `provinces` group of db/commands.py."""
from __future__ import annotations

import click

from config.cli import fail, load_settings
from db.cli import guard as _guard
from db.commands import provinces


def _find(s, code: str):
    from sqlalchemy import func, select

    from db.models import Province

    key = code.strip()
    province = s.scalar(select(Province).where(
        (Province.area_code == key) | (func.lower(Province.name_en) == key.lower())
        | (Province.name_fa == key)))
    if province is None:
        fail(f"no province with area code or name {code!r} (see `favad provinces list`)")
    return province


def _session(ctx):
    from db.engine import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(load_settings(ctx).db_url))()


@provinces.command("activate")
@click.argument("code")
@click.option("--on", "on", default="today", show_default=True,
              help="The first day 128 answers there: Jalali (1404-07-01) or ISO (2025-09-23).")
@click.pass_context
@_guard
def provinces_activate(ctx, code, on):
    """Switch 128 on for a province (by area code or name) from a date."""
    from ivr.reference import TTL as DIRECTORY_TTL, refresh_after_change
    from clock import today as today_in_tehran
    from rollout.dates import DateError, jalali_date, parse_date

    try:
        day = parse_date(on)
    except DateError as e:
        fail(str(e), 2)
    with _session(ctx) as s:
        province = _find(s, code)
        province.activated_on = day
        s.commit()
        name = f"{province.name_en} ({province.area_code}, {province.name_fa})"
    refresh_after_change(load_settings(ctx))
    when = "now" if day <= today_in_tehran() else "from that day"
    click.echo(f"{name}: 128 is live from {jalali_date(day)} ({day.isoformat()}); calls from there "
               f"are served {when} (running servers notice within {DIRECTORY_TTL:.0f} s)")


@provinces.command("deactivate")
@click.argument("code")
@click.pass_context
@_guard
def provinces_deactivate(ctx, code):
    """Switch 128 off for a province: its callers hear that the service is not live there yet."""
    from ivr.reference import TTL as DIRECTORY_TTL, refresh_after_change

    with _session(ctx) as s:
        province = _find(s, code)
        province.activated_on = None
        s.commit()
        name = f"{province.name_en} ({province.area_code}, {province.name_fa})"
    refresh_after_change(load_settings(ctx))
    click.echo(f"{name}: 128 is switched off there (running servers notice within "
               f"{DIRECTORY_TTL:.0f} s)")


@provinces.command("languages")
@click.argument("code")
@click.argument("languages", required=False)
@click.pass_context
@_guard
def provinces_languages(ctx, code, languages):
    """Show or set the languages a province is offered, its default first: `41 az,fa`."""
    from ivr.catalog import languages as known, with_catalog
    from ivr.reference import TTL as DIRECTORY_TTL, refresh_after_change

    with _session(ctx) as s:
        province = _find(s, code)
        name = f"{province.name_en} ({province.area_code}, {province.name_fa})"
        if not languages:
            click.echo(f"{name}: {province.languages}")
            return
        codes = [c.strip() for c in languages.split(",") if c.strip()]
        unknown = [c for c in codes if c not in known()]
        if not codes or unknown or len(set(codes)) != len(codes):
            fail(f"{languages!r}: give distinct language codes, the default first, from "
                 f"{', '.join(known())} (ivr/languages.toml)")
        province.languages = ",".join(codes)
        s.commit()
    refresh_after_change(load_settings(ctx))
    for c in codes:
        if c not in with_catalog():
            click.echo(f"favad: warning: {c} has no catalog (ivr/catalog.{c}.toml): its callers "
                       f"hear Persian", err=True)
    click.echo(f"{name}: {','.join(codes)} ({codes[0]} first; running servers notice within "
               f"{DIRECTORY_TTL:.0f} s; `favad dialplan deploy` sets it for the apology too)")
