"""favad: the command line of 128. The front door only: each package brings its commands."""
from __future__ import annotations

import click

from db.commands import agencies, complaints, db, offices, provinces
from ivr.commands import agi, call, menu, serve
from config.commands import config
from prompts.commands import prompts


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML configuration file (default: $FAVAD_CONFIG, else ./favad.toml if present).")
@click.pass_context
def main(ctx, config_path):
    """128, the administrative emergencies hotline."""
    ctx.params["config"] = config_path


for command in (serve, agi, call, menu, db, complaints, provinces, agencies, offices, config, prompts):
    main.add_command(command)

if __name__ == "__main__":
    main()
