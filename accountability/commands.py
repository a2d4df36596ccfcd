"""`favad complaints ack|resolve|reassign`: the centre's staff act as a unit would on its page."""
from __future__ import annotations

import datetime as dt
import getpass

import click
from sqlalchemy import select

from config.cli import fail
from db.commands import _guard, _session, complaints
from presentation import jalali


def _actor(s, unit_code: str | None):
    from accountability.actions import Actor
    from dispatch.models import InspectionUnit

    if not unit_code:
        return Actor.staff(getpass.getuser())
    unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == unit_code))
    if unit is None:
        fail(f"no inspection unit with code {unit_code!r} (see `favad units list`)")
    return Actor.unit(unit)


def _run(ctx, code: str, unit_code: str | None, act) -> str:
    """Find the complaint, act, commit; an ActionError becomes a clear message and exit 1."""
    from accountability.actions import ActionError, find

    with _session(ctx) as s:
        try:
            c = find(s, code)
            said = act(s, c, _actor(s, unit_code), dt.datetime.now(dt.timezone.utc))
            s.commit()
        except ActionError as e:
            fail(str(e))
        return f"{c.case_number}: {said} (status {c.status})"


_UNIT = click.option("--unit", "unit_code",
                     help="Act for this inspection unit (default: you, as the centre's staff).")


@complaints.command("ack")
@click.argument("code")
@_UNIT
@click.pass_context
@_guard
def complaints_ack(ctx, code, unit_code):
    """Acknowledge a complaint: a unit is on it (under review; no escalation)."""
    from accountability.actions import acknowledge

    click.echo(_run(ctx, code, unit_code, lambda s, c, who, now:
                    "acknowledged" if acknowledge(s, c, who, now) else "taken up already, nothing recorded"))


@complaints.command("resolve")
@click.argument("code")
@click.option("--outcome", required=True, type=click.Choice(
    ["fixed_on_spot", "written_warning", "manager_dismissed", "commendation", "not_confirmed"]),
    help="What was done; the caller hears it at follow-up.")
@click.option("--note", default="", help="A short note on what was done.")
@_UNIT
@click.pass_context
@_guard
def complaints_resolve(ctx, code, outcome, note, unit_code):
    """Resolve a complaint with an outcome and a note."""
    from accountability.actions import resolve

    def act(s, c, who, now):
        resolve(s, c, who, outcome, note, now)
        return f"resolved at {jalali(now)} ({outcome})"

    click.echo(_run(ctx, code, unit_code, act))


@complaints.command("reassign")
@click.argument("code")
@click.option("--to", "to_code", required=True, help="The inspection unit to forward it to.")
@click.option("--reason", required=True, help="Why it goes there.")
@_UNIT
@click.pass_context
@_guard
def complaints_reassign(ctx, code, to_code, reason, unit_code):
    """Forward a complaint to another inspection unit, with a reason."""
    from accountability.actions import reassign
    from dispatch.models import InspectionUnit

    def act(s, c, who, now):
        to = s.scalar(select(InspectionUnit).where(InspectionUnit.code == to_code))
        if to is None:
            fail(f"no inspection unit with code {to_code!r} (see `favad units list`)")
        reassign(s, c, who, to, reason, now)
        return f"forwarded to unit {to.code}; its messages are queued"

    click.echo(_run(ctx, code, unit_code, act))
