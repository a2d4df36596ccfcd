"""favad: the command line of 128. The front door only: each package brings its commands."""
from __future__ import annotations

import importlib
import os
import sys

import click

from config.files import keep_private
from common.redact import guard_stderr

# command -> "module:attribute"; a module is imported only when its command runs, so that a
# classic AGI process (`favad agi`, one per call) starts without loading the whole system
COMMANDS = {
    "serve": "ivr.commands:serve",
    "agi": "ivr.commands:agi",
    "call": "ivr.commands:call",
    "menu": "ivr.commands:menu",
    "journal": "ivr.commands:journal",
    "reference": "ivr.commands:reference",  # the snapshot classic AGI starts from
    "db": "db.commands:db",
    "complaints": "accountability.commands:complaints",  # db's group, with ack/resolve/reassign
    "provinces": "rollout.commands:provinces",  # db's group, with activate/deactivate added
    "agencies": "db.commands:agencies",
    "offices": "db.commands:offices",
    "config": "config.commands:config",
    "prompts": "prompts.commands:prompts",
    "dispatch": "dispatch.commands:dispatch",
    "outbox": "dispatch.commands:outbox",
    "units": "dispatch.commands:units",
    "dialplan": "dialplan.commands:dialplan",
    "monitor": "monitor.commands:monitor",
    "web": "web.commands:web",
    "staff": "web.staff.commands:staff",  # the staff web pages' accounts
    "report": "reports.commands:report",
    "retention": "retention.commands:retention",
    "system": "service.commands:system",
    "doctor": "service.commands:doctor",
    "backup": "service.commands:backup",
    "restore": "service.commands:restore",
}


class LazyGroup(click.Group):
    def main(self, args=None, *rest, **kw):
        """Refuse, before any command runs, an argument that is not UTF-8 (its bytes were
        smuggled in as surrogates, which every later print would choke on)."""
        for i, arg in enumerate(sys.argv[1:] if args is None else args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                raw = os.fsencode(arg) if isinstance(arg, str) else arg
                click.echo(f"favad: argument {i} is not UTF-8 text: {raw!r}", err=True)
                sys.exit(2)
        return super().main(args, *rest, **kw)

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML configuration file (default: $FAVAD_CONFIG, else ./favad.toml if present).")
@click.pass_context
def main(ctx, config_path):
    """128, the administrative emergencies hotline."""
    keep_private()  # before anything is written: files 0600, folders 0700 (config/files.py)
    guard_stderr()  # what reaches stderr past the log handlers is redacted too
    ctx.params["config"] = config_path


if __name__ == "__main__":
    main()
