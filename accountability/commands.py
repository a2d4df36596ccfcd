"""`favad complaints ack|resolve|reassign|escalate`: the centre's staff act as a unit would on its page."""
from __future__ import annotations

import datetime as dt
import os
import pwd

import click
from sqlalchemy import select

from config.cli import fail, load_settings
from db.cli import guard as _guard, session as _session
from db.commands import complaints
from presentation import jalali


def os_user() -> str:
    """This process's user, as the OS knows it ($USER and $LOGNAME are anyone's to set)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a container)
        return f"uid{uid}"


def may_act(settings, user: str | None = None) -> str | None:
    """Why this OS user may not act on complaints (``staff_os_users``), or None."""
    from config.checks import names

    user = os_user() if user is None else user
    allowed = names(settings.staff_os_users)
    if allowed and user not in allowed:
        return f"OS user {user!r} may not act on complaints (not in staff_os_users)"
    return None


def staff_member(settings, as_name: str | None, user: str | None = None):
    """The staff Actor this process may act as, or a message saying why it may not: the OS
    user must be in ``staff_os_users`` (when set); the name is ``--as`` from the ``staff``
    list (when set), else the OS user's own."""
    from accountability.actions import Actor
    from config.checks import names

    user = os_user() if user is None else user
    refused = may_act(settings, user)
    if refused:
        return None, refused
    staff = names(settings.staff)
    if as_name is not None and not staff:
        return None, "--as needs the staff setting (the names one may act as); without it you act as your OS user"
    name = user if as_name is None else as_name
    if staff and name not in staff:
        said = "--as" if as_name is not None else f"OS user {user!r} is not a staff name: use --as"
        return None, f"{said} must be one of the staff names ({', '.join(staff)})"
    try:
        return Actor.staff(name, user), None
    except ValueError as e:
        return None, str(e)


def _actor(ctx, s, unit_code: str | None, as_name: str | None):
    from accountability.actions import Actor
    from dispatch.models import InspectionUnit

    who, why = staff_member(load_settings(ctx), as_name)
    if who is None:
        fail(why)
    if not unit_code:
        return who
    unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == unit_code))
    if unit is None:
        fail(f"no inspection unit with code {unit_code!r} (see `favad units list`)")
    return Actor.unit(unit, by=who)


def _run(ctx, code: str, unit_code: str | None, act, as_name: str | None = None) -> str:
    """Find the complaint, act, commit; an ActionError becomes a clear message and exit 1."""
    from accountability.actions import ActionError, find

    with _session(ctx) as s:
        try:
            c = find(s, code)
            said = act(s, c, _actor(ctx, s, unit_code, as_name), dt.datetime.now(dt.timezone.utc))
            s.commit()
        except ActionError as e:
            fail(str(e))
        return f"{c.case_number}: {said} (status {c.status})"


_UNIT = click.option("--unit", "unit_code",
                     help="Act for this inspection unit (default: you, as the centre's staff).")
_AS = click.option("--as", "as_name", help="Your staff name, one of the staff setting (default: your OS user).")


@complaints.command("ack")
@click.argument("code")
@_UNIT
@_AS
@click.pass_context
@_guard
def complaints_ack(ctx, code, unit_code, as_name):
    """Acknowledge a complaint: a unit is on it (under review; no escalation)."""
    from accountability.actions import acknowledge

    click.echo(_run(ctx, code, unit_code, lambda s, c, who, now:
                    "acknowledged" if acknowledge(s, c, who, now) else "taken up already, nothing recorded",
                    as_name))


@complaints.command("resolve")
@click.argument("code")
@click.option("--outcome", required=True, type=click.Choice(
    ["fixed_on_spot", "written_warning", "manager_dismissed", "commendation", "not_confirmed"]),
    help="What was done; the caller hears it at follow-up.")
@click.option("--note", default="", help="A short note on what was done.")
@_UNIT
@_AS
@click.pass_context
@_guard
def complaints_resolve(ctx, code, outcome, note, unit_code, as_name):
    """Resolve a complaint with an outcome and a note."""
    from accountability.actions import resolve

    def act(s, c, who, now):
        resolve(s, c, who, outcome, note, now)
        return f"resolved at {jalali(now)} ({outcome})"

    click.echo(_run(ctx, code, unit_code, act, as_name))


@complaints.command("reassign")
@click.argument("code")
@click.option("--to", "to_code", required=True, help="The inspection unit to forward it to.")
@click.option("--reason", required=True, help="Why it goes there.")
@_UNIT
@_AS
@click.pass_context
@_guard
def complaints_reassign(ctx, code, to_code, reason, unit_code, as_name):
    """Forward a complaint to another inspection unit, with a reason."""
    from accountability.actions import reassign
    from dispatch.models import InspectionUnit

    def act(s, c, who, now):
        to = s.scalar(select(InspectionUnit).where(InspectionUnit.code == to_code))
        if to is None:
            fail(f"no inspection unit with code {to_code!r} (see `favad units list`)")
        reassign(s, c, who, to, reason, now)
        return f"forwarded to unit {to.code}; its messages are queued"

    click.echo(_run(ctx, code, unit_code, act, as_name))


@complaints.command("escalate")
@click.argument("code")
@click.option("--reason", required=True, help="Why it goes to the escalation office now.")
@_UNIT
@_AS
@click.pass_context
@_guard
def complaints_escalate(ctx, code, reason, unit_code, as_name):
    """Escalate a complaint now to its escalation office (the governorate's inspection), with a reason."""
    from accountability.actions import escalate

    def act(s, c, who, now):
        unit = escalate(s, c, who, reason, now)
        return f"escalated to unit {unit.code}; its messages are queued"

    click.echo(_run(ctx, code, unit_code, act, as_name))
