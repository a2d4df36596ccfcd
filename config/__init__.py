"""Configuration: a TOML file, then environment variables, over embedded defaults.

Order of precedence (last wins): built-in defaults, the TOML file named by ``--config`` or
``FAVAD_CONFIG`` (default ``favad.toml`` in the working directory, if it exists), ``FAVAD_*``
environment variables. Secrets are never printed: ``Settings.public()`` masks them.
"""
from __future__ import annotations

import os
import secrets
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

SECRET_FIELDS = {"caller_hash_key"}

# environment variable -> settings field
ENV = {
    "FAVAD_DATABASE_URL": "database_url",
    "FAVAD_DATA_DIR": "data_dir",
    "FAVAD_LISTEN_HOST": "listen_host",
    "FAVAD_LISTEN_PORT": "listen_port",
    "FAVAD_SCRIPT": "script",
    "FAVAD_RECORDINGS_DIR": "recordings_dir",
    "FAVAD_SOUNDS_DIR": "sounds_dir",
    "FAVAD_MENU": "menu_file",
    "FAVAD_CALLER_HASH_KEY": "caller_hash_key",
    "FAVAD_OPERATOR_QUEUE": "operator_queue",
    "FAVAD_SLA_HOURS": "sla_hours",
    "FAVAD_MAX_CONNECTIONS": "max_connections",
    "FAVAD_SHUTDOWN_GRACE": "shutdown_grace",
    "FAVAD_LOG_LEVEL": "log_level",
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    data_dir: str = "var"
    database_url: str = ""  # empty: SQLite file in data_dir
    listen_host: str = "127.0.0.1"
    listen_port: int = 4573
    script: str = "favad"
    recordings_dir: str = ""  # empty: data_dir/recordings; absolute path on Asterisk's disk
    sounds_dir: str = ""  # empty: data_dir/sounds; on an Asterisk box /var/lib/asterisk/sounds
    menu_file: str = ""  # empty: the packaged ivr/menu.toml
    caller_hash_key: str = ""  # empty: generated once into data_dir/caller-hash.key
    operator_queue: str = ""  # empty: no operator, menu key 0 is not offered
    sla_hours: float = 3.0
    max_connections: int = 4000
    shutdown_grace: float = 30.0
    log_level: str = "INFO"
    config_file: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'favad.sqlite3'}"

    @property
    def recordings_path(self) -> Path:
        return Path(self.recordings_dir or Path(self.data_dir, "recordings")).resolve()

    @property
    def sounds_path(self) -> str:
        return str(Path(self.sounds_dir or Path(self.data_dir, "sounds")).resolve())

    def hash_key(self) -> bytes:
        """The caller-hash key; generated with mode 0600 on first use when none is configured."""
        if self.caller_hash_key:
            return self.caller_hash_key.encode()
        path = Path(self.data_dir, "caller-hash.key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    def public(self) -> dict:
        """Settings as a dict with secrets masked, for `favad config show`."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "********"
            if f.name == "database_url" and value and "@" in value:
                value = _mask_url_password(value)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _mask_url_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:********@{host}" if ":" in creds else url


def _coerce(name: str, raw):
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    return str(raw)


def load(path: str | None = None, environ: dict | None = None) -> Settings:
    """Build Settings from defaults, the TOML file and the environment."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    warnings: list[str] = []
    path = path or environ.get("FAVAD_CONFIG") or ("favad.toml" if Path("favad.toml").exists() else "")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"configuration file {path} is not valid TOML: {e}") from None
        known = {f.name for f in fields(Settings)} - {"config_file", "warnings"}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, value)
        if p.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH) and SECRET_FIELDS & data.keys():
            warnings.append(f"{path} holds secrets and is readable by other users: chmod 600 {path}")
        values["config_file"] = str(p)
    for var, name in ENV.items():
        if environ.get(var, "") != "":
            values[name] = _coerce(name, environ[var])
    return replace(Settings(), **values, warnings=tuple(warnings))
