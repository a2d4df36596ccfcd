"""`favad staff add|reset|disable|enable|list`: the staff's web accounts."""
from __future__ import annotations

import datetime as dt

import click

from config.cli import fail, load_settings
from db.cli import emit as _emit, guard as _guard, session as _session

from accountability.staff import ROLES


@click.group()
def staff():
    """Accounts for the staff web pages (/staff): roles, scopes, credentials."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _allowed(ctx) -> None:
    """Only whoever may act on complaints from this machine may hand out accounts that act."""
    from accountability.commands import may_act

    refused = may_act(load_settings(ctx))
    if refused:
        fail(refused)


def _show(issued, what: str) -> None:
    """The credentials, once: nothing keeps the password, and nothing prints the secret again."""
    click.echo(f"favad: {what}; give these to {issued.account.name} in person or over a "
               f"secure channel: they are not shown again", err=True)
    click.echo(f"name:        {issued.account.name}")
    click.echo(f"password:    {issued.password}")
    click.echo(f"TOTP secret: {issued.totp_secret}")
    click.echo(f"TOTP URI:    {issued.uri}")


@staff.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="national: everything; province/agency: one province or agency; analyst: read-only; unit: one unit's inbox.")
@click.option("--province", help="Area code of the province (role province, or an analyst's scope).")
@click.option("--agency", help="Code of the agency (role agency, or an analyst's scope).")
@click.option("--unit", help="Code of the inspection unit (role unit).")
@click.pass_context
@_guard
def staff_add(ctx, name, role, province, agency, unit):
    """Make an account; print its one-time password and TOTP secret (and otpauth:// URI)."""
    from accountability.accounts import AccountError, add

    _allowed(ctx)
    with _session(ctx) as s:
        try:
            issued = add(s, name, role, _now(), province=province, agency=agency, unit=unit)
        except AccountError as e:
            fail(str(e))
        s.commit()
    _show(issued, f"account {issued.account.name} ({role}) made")


@staff.command("reset")
@click.argument("name")
@click.pass_context
@_guard
def staff_reset(ctx, name):
    """Issue a new password and TOTP secret, lift a lock, and end every session of the account."""
    from accountability.accounts import AccountError, reset

    _allowed(ctx)
    with _session(ctx) as s:
        try:
            issued = reset(s, name, _now())
        except AccountError as e:
            fail(str(e))
        s.commit()
    note = " (still disabled: `favad staff enable` to let it log in)" if issued.account.disabled else ""
    _show(issued, f"new credentials for {name}; its sessions ended{note}")


@staff.command("disable")
@click.argument("name")
@click.pass_context
@_guard
def staff_disable(ctx, name):
    """Stop an account from logging in and end its sessions at once."""
    _set(ctx, name, True)
    click.echo(f"favad: {name} disabled; its sessions ended", err=True)


@staff.command("enable")
@click.argument("name")
@click.pass_context
@_guard
def staff_enable(ctx, name):
    """Let a disabled account log in again (with the credentials it had)."""
    _set(ctx, name, False)
    click.echo(f"favad: {name} enabled", err=True)


def _set(ctx, name: str, disabled: bool) -> None:
    from accountability.accounts import AccountError, set_disabled

    _allowed(ctx)
    with _session(ctx) as s:
        try:
            set_disabled(s, name, disabled, _now())
        except AccountError as e:
            fail(str(e))
        s.commit()


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def staff_list(ctx, as_json):
    """The accounts: name, role, scope, state (no password, no secret)."""
    from accountability.accounts import listing

    with _session(ctx) as s:
        rows = listing(s, _now())
    _emit(rows, as_json, ["name", "role", "scope", "state", "locked_until", "created_at"])
