"""Configuration: file, then environment; secrets masked and their file's permissions checked."""
from __future__ import annotations

import json
import re
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


@pytest.mark.parametrize("text,message", [("listen_port = 'x'", "must be a whole number"),
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


# ---- every value checked on load (issue 12, item 7) -------------------------------------------
@pytest.mark.parametrize("text,message", [
    ("listen_port = 99999999", "listen_port must be between 0 and 65535, got 99999999"),
    ("web_port = 99999999", "web_port must be between 0 and 65535"),
    ("listen_port = 1.9", "listen_port must be a whole number, got 1.9"),
    ("max_connections = -5", "max_connections must be between 1 and"),
    ("link_ttl_days = 100000", "link_ttl_days must be between"),
    ("link_ttl_days = -1", "link_ttl_days must be between"),
    ("sla_hours = nan", "sla_hours must be a finite number"),
    ("smtp_timeout = inf", "smtp_timeout must be a finite number"),
    ("dispatch_lease = -inf", "dispatch_lease must be a finite number"),
    ("listen_port = true", "listen_port must be a whole number"),
    ("key_grace_days = -1", "key_grace_days must be between 0"),
    ("limit_complaints_day = -3", "limit_complaints_day must be between 0"),
    ("counts_flush_min = 900.0\ncounts_flush_max = 300.0", "counts_flush_min (900) must not exceed"),
    ("retention_recording_days = 0", "retention_recording_days must be between 1"),
    ("log_level = 'chatty'", "log_level must be one of"),
    ("public_url = 'javascript:alert(1)'", "public_url must be an http:// or https:// address"),
    ('staff = "ali, evil\\ninjected"', "staff: 'evil\\ninjected' is not a user name"),
    ("data_dir = 5.5", "data_dir must be text"),
    ("data_dir = ['a']", "data_dir must be text"),
])
def test_each_bad_value_is_one_line_naming_it_and_exit_code_2(tmp_path, text, message):
    conf = tmp_path / "favad.toml"
    conf.write_text(text + "\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(str(conf), environ={})
    done = run(tmp_path, "--config", str(conf), "config", "show")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    conf = tmp_path / "favad.toml"
    conf.write_text("listen_port = 99999999\nmax_connections = -5\nnope = 1\nsla_hours = 'x'\n")
    done = run(tmp_path, "--config", str(conf), "config", "show", env={"FAVAD_WEB_PORT": "1.9"})
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 5 and all(line.startswith("favad: ") for line in lines)
    assert any("web_port (FAVAD_WEB_PORT) must be a whole number" in line for line in lines)
    # the same problems, however many there are
    conf.write_text("listen_port = 99999999\nmax_connections = -5\n")
    assert len(run(tmp_path, "--config", str(conf), "config", "show").stderr.splitlines()) == 2


@pytest.mark.parametrize("var,value", [("FAVAD_LISTEN_PORT", "99999999"), ("FAVAD_LISTEN_PORT", "1.9"),
                                       ("FAVAD_SLA_HOURS", "nan"), ("FAVAD_LINK_TTL_DAYS", "-1"),
                                       ("FAVAD_MAX_CONNECTIONS", "-5")])
def test_the_environment_is_checked_as_the_file_is(var, value):
    with pytest.raises(ConfigError, match=var):
        load("", environ={var: value})


def test_a_file_that_is_not_utf8_is_a_message_not_a_traceback(tmp_path):
    conf = tmp_path / "favad.toml"
    conf.write_bytes(b'mail_from = "\xff\xfe@example"\n')
    done = run(tmp_path, "--config", str(conf), "config", "show")
    assert done.returncode == 2 and "not UTF-8" in done.stderr and "Traceback" not in done.stderr


def test_good_values_at_the_edges_load():
    s = load("", environ={"FAVAD_LISTEN_PORT": "0", "FAVAD_WEB_PORT": "65535", "FAVAD_LINK_TTL_DAYS": "3650",
                          "FAVAD_SLA_HOURS": "3", "FAVAD_DISPATCH_IN_SERVE": "0", "FAVAD_LOG_LEVEL": "debug",
                          "FAVAD_STAFF": "zahra.ahmadi, ali_k", "FAVAD_PUBLIC_URL": "https://128.example.ir"})
    assert (s.listen_port, s.web_port, s.sla_hours, s.link_ttl_days) == (0, 65535, 3.0, 3650.0)


def test_a_password_anywhere_in_a_url_is_masked_and_warned_about(tmp_path):
    conf = tmp_path / "favad.toml"
    conf.write_text("database_url = 'postgresql://favad@db.example/favad?sslmode=require&password=hunter2'\n"
                    "recording_url_base = 'https://rec:pa55@files.example/r?token=t0ps3cret&x=1'\n")
    conf.chmod(0o640)
    done = run(tmp_path, "--config", str(conf), "config", "show")
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout and "pa55" not in done.stdout and "t0ps3cret" not in done.stdout
    shown = json.loads(done.stdout)
    assert shown["database_url"] == "postgresql://favad@db.example/favad?sslmode=require&password=********"
    assert shown["recording_url_base"] == "https://rec:********@files.example/r?token=********&x=1"
    assert "readable by other users" in done.stderr  # its only secrets sit inside URLs


@pytest.mark.parametrize("secret", ["tracking_key", "caller_hash_key", "link_keys", "ami_secret"])
def test_every_secret_setting_makes_an_open_file_a_warning(tmp_path, secret):
    conf = tmp_path / "favad.toml"
    conf.write_text(f"{secret} = 'abc'\n")
    conf.chmod(0o604)
    assert any("readable by other users" in w for w in load(str(conf), environ={}).warnings)


def test_a_keys_folder_open_to_others_is_a_warning(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    keys.chmod(0o700)
    env = {"FAVAD_KEYS_DIR": str(keys), "FAVAD_DATA_DIR": str(tmp_path / "var")}
    assert not load("", environ=env).warnings
    keys.chmod(0o755)
    [warning] = load("", environ=env).warnings
    assert f"chmod 700 {keys}" in warning


def test_arguments_that_are_not_utf8_are_refused_cleanly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cli", "complaints", "show", b"\xff\xfe"],
                          capture_output=True, cwd=tmp_path, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2 and "not UTF-8" in err and "Traceback" not in err
    done = run(tmp_path, "config", "show", env={"FAVAD_SMTP_HOST": "ok"})
    assert done.returncode == 0


def test_a_page_on_every_address_without_public_url_is_warned_about():
    [warning] = load("", environ={"FAVAD_WEB_HOST": "0.0.0.0", "FAVAD_KEYS_DIR": "/nonexistent"}).warnings
    assert "set public_url" in warning
    assert not load("", environ={"FAVAD_WEB_HOST": "0.0.0.0", "FAVAD_PUBLIC_URL": "https://128.example.ir",
                                 "FAVAD_KEYS_DIR": "/nonexistent"}).warnings
