"""`favad system install`, `favad doctor`, `favad backup`, `favad restore`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from config.cli import fail, load_settings


@click.group()
def system():
    """Run 128 as a service on this server (systemd)."""


@system.command("install")
@click.option("--dry-run", is_flag=True, help="Print every file and step; change nothing.")
@click.option("--asterisk-group", default="asterisk", show_default=True,
              help="Asterisk's group: it writes the recordings favad reads.")
@click.option("--user", default="favad", show_default=True, help="The system user favad runs as.")
@click.option("--config", "config_path", default="/etc/favad/favad.toml", show_default=True)
@click.option("--data-dir", default="/var/lib/favad", show_default=True)
@click.option("--keys-dir", default="/var/lib/favad-keys", show_default=True)
@click.option("--recordings-dir", default="/var/spool/asterisk/favad", show_default=True)
@click.option("--writable", multiple=True, help="Another folder the services write (repeat).")
@click.option("--classic-agi-only", is_flag=True,
              help="No `favad serve`: replay the journal every minute instead.")
@click.option("--unit-dir", default="/etc/systemd/system", show_default=True, hidden=True)
@click.option("--no-systemctl", is_flag=True, hidden=True)
def system_install(dry_run, asterisk_group, user, config_path, data_dir, keys_dir, recordings_dir,
                   writable, classic_agi_only, unit_dir, no_systemctl):
    """Create favad's user, folders, starter configuration and systemd units (idempotent)."""
    from service import install
    from service.units import Layout, enabled, render

    favad = str(Path(sys.argv[0]).resolve()) if Path(sys.argv[0]).name == "favad" \
        else str(Path(sys.executable).with_name("favad"))
    layout = Layout(favad=favad, config=config_path, data_dir=data_dir, keys_dir=keys_dir,
                    recordings_dir=recordings_dir, writable=tuple(writable), user=user,
                    asterisk_group=asterisk_group, classic_agi_only=classic_agi_only)
    if dry_run:
        for line in install.describe(layout, Path(unit_dir)):
            click.echo(line)
        return
    try:
        done = install.ensure_user(user, asterisk_group)
        done += install.apply(install.plan(layout, Path(unit_dir)))
        if not no_systemctl:
            subprocess.run(["systemctl", "daemon-reload"], check=True)
            subprocess.run(["systemctl", "enable", *enabled(render(layout))], check=True)
    except (OSError, KeyError, subprocess.CalledProcessError) as e:
        fail(f"install stopped: {e} (run as root; is Asterisk installed, with group {asterisk_group}?)")
    for line in done or ["nothing to change"]:
        click.echo(line)
    click.echo(f"next: edit {config_path}, `favad db upgrade`, then `favad doctor` and "
               f"`systemctl start favad-serve favad-dispatch favad-web`")


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keys", "keys_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the keys to this file (keep it apart from the database's backup).")
@click.pass_context
def backup(ctx, out, keys_out):
    """Back up the database (SQLite online backup, or pg_dump) to OUT; never the keys in it."""
    from service.backup import BackupError, backup_database, backup_keys

    settings = load_settings(ctx)
    if keys_out is not None and keys_out.resolve() == out.resolve():
        fail("the keys go to a file of their own, not the database's backup", 2)
    try:
        backup_database(settings, out)
        click.echo(f"database -> {out}")
        if keys_out is not None:
            click.echo(f"{backup_keys(settings, keys_out)} key files -> {keys_out} (store it apart)")
    except (BackupError, OSError) as e:
        fail(f"backup failed: {e}")


@click.command()
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The keys' backup (`favad backup --keys`).")
@click.pass_context
def restore(ctx, backup_file, keys_file):
    """Restore a database backup into an empty database (and the keys, from their own file)."""
    from db.engine import make_engine
    from service.backup import BackupError, restore_database, restore_keys

    settings = load_settings(ctx)
    engine = make_engine(settings.db_url)
    try:
        if keys_file is not None:
            click.echo(f"{restore_keys(settings, keys_file)} key files restored")
        restore_database(settings, backup_file, engine)
    except (BackupError, OSError, tarfile_error()) as e:
        fail(f"restore failed: {e}")
    finally:
        engine.dispose()
    click.echo(f"database restored from {backup_file}; next: `favad db upgrade` (a backup from an "
               f"older version), then `favad doctor`")


def tarfile_error():
    import tarfile

    return tarfile.TarError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output, for monitoring.")
@click.option("--only", multiple=True, help="Run only this check (repeat).")
@click.pass_context
def doctor(ctx, as_json, only):
    """Check this deployment end to end; each problem with a one-line fix (exit 1 if any)."""
    from service.doctor import run

    results = run(load_settings(ctx), tuple(only))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=1))
    else:
        for r in results:
            click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.name:<13} {r.found}")
            if not r.ok:
                click.echo(f"     {'':<13} fix: {r.fix}")
    sys.exit(0 if all(r.ok for r in results) else 1)
