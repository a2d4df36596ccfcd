"""Configuration: file, then environment; secrets masked and their file's permissions checked."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from config import ConfigError, load


def run(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, **(env or {})}, timeout=60)


def test_environment_overrides_the_file_and_secrets_are_never_shown(tmp_path):
    conf = tmp_path / "favad.toml"
    conf.write_text('listen_port = 4600\ncaller_hash_key = "s3cret-key"\n'
                    'database_url = "postgresql://favad:pa55word@db.example/favad"\n')
    conf.chmod(0o644)
    done = run(tmp_path, "--config", str(conf), "config", "show", env={"FAVAD_LISTEN_PORT": "4700"})
    assert done.returncode == 0
    shown = json.loads(done.stdout)
    assert shown["listen_port"] == 4700
    assert "s3cret-key" not in done.stdout + done.stderr and "pa55word" not in done.stdout + done.stderr
    assert "readable by other users" in done.stderr
    conf.chmod(0o600)
    assert "readable" not in run(tmp_path, "--config", str(conf), "config", "show").stderr


@pytest.mark.parametrize("text,message", [("listen_port = 'x'", "must be a number"),
                                          ("no_such_setting = 1", "unknown setting"),
                                          ("listen_port = ", "not valid TOML")])
def test_bad_configuration_is_a_clear_message_and_exit_code_2(tmp_path, text, message):
    conf = tmp_path / "favad.toml"
    conf.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(str(conf), environ={})
    done = run(tmp_path, "--config", str(conf), "config", "show")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    done = run(tmp_path, "complaints", "show", "0000000000",
               env={"FAVAD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert done.returncode == 1 and "database" in done.stderr and "Traceback" not in done.stderr
    done = run(tmp_path, "call", "--port", "1", "--digits", "1")
    assert done.returncode == 1 and "no FastAGI server" in done.stderr and "Traceback" not in done.stderr
