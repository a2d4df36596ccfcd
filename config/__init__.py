"""Configuration: a TOML file, then environment variables, over embedded defaults.

Order of precedence (last wins): built-in defaults, the TOML file named by ``--config`` or
``FAVAD_CONFIG`` (default ``favad.toml`` in the working directory, if it exists), ``FAVAD_*``
environment variables. Secrets are never printed: ``Settings.public()`` masks them.
"""
from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from config import checks, dburl

SECRET_FIELDS = {"caller_hash_key", "tracking_key", "smtp_password", "sms_api_key", "ami_secret"}
SECRET_FIELDS |= {"link_keys"}  # the keys that sign the inspection units' links

# environment variable -> settings field
ENV = {
    "FAVAD_DATABASE_URL": "database_url",
    "FAVAD_DATA_DIR": "data_dir",
    "FAVAD_LISTEN_HOST": "listen_host",
    "FAVAD_LISTEN_PORT": "listen_port",
    "FAVAD_SCRIPT": "script",
    "FAVAD_RECORDINGS_DIR": "recordings_dir",
    "FAVAD_RECORDINGS_GROUP": "recordings_group",
    "FAVAD_SOUNDS_DIR": "sounds_dir",
    "FAVAD_MENU": "menu_file",
    "FAVAD_CALLER_HASH_KEY": "caller_hash_key",
    "FAVAD_KEYS_DIR": "keys_dir",
    "FAVAD_TRACKING_KEY": "tracking_key",
    "FAVAD_KEY_GRACE_DAYS": "key_grace_days",
    "FAVAD_LIMIT_COMPLAINTS_DAY": "limit_complaints_day",
    "FAVAD_LIMIT_COMPLAINTS_MONTH": "limit_complaints_month",
    "FAVAD_LIMIT_GUESSES_DAY": "limit_guesses_day",
    "FAVAD_LIMIT_GUESSES_MONTH": "limit_guesses_month",
    "FAVAD_COUNTS_FLUSH_MIN": "counts_flush_min",
    "FAVAD_COUNTS_FLUSH_MAX": "counts_flush_max",
    "FAVAD_OPERATOR_QUEUE": "operator_queue",
    "FAVAD_SLA_HOURS": "sla_hours",
    "FAVAD_MAX_CONNECTIONS": "max_connections",
    "FAVAD_SHUTDOWN_GRACE": "shutdown_grace",
    "FAVAD_LOG_LEVEL": "log_level",
    "FAVAD_LOG_FORMAT": "log_format",
    "FAVAD_METRICS_HOST": "metrics_host",
    "FAVAD_METRICS_PORT": "metrics_port",
    "FAVAD_SMTP_HOST": "smtp_host",
    "FAVAD_SMTP_PORT": "smtp_port",
    "FAVAD_SMTP_SECURITY": "smtp_security",
    "FAVAD_SMTP_USER": "smtp_user",
    "FAVAD_SMTP_PASSWORD": "smtp_password",
    "FAVAD_SMTP_CA_FILE": "smtp_ca_file",
    "FAVAD_SMTP_TIMEOUT": "smtp_timeout",
    "FAVAD_MAIL_FROM": "mail_from",
    "FAVAD_MAILDIR": "maildir",
    "FAVAD_SMS_URL": "sms_url",
    "FAVAD_SMS_API_KEY": "sms_api_key",
    "FAVAD_SMS_SENDER": "sms_sender",
    "FAVAD_SMS_TIMEOUT": "sms_timeout",
    "FAVAD_SMS_FILE": "sms_file",
    "FAVAD_DISPATCH_MAX_TRIES": "dispatch_max_tries",
    "FAVAD_DISPATCH_BACKOFF_BASE": "dispatch_backoff_base",
    "FAVAD_DISPATCH_BACKOFF_MAX": "dispatch_backoff_max",
    "FAVAD_DISPATCH_LEASE": "dispatch_lease",
    "FAVAD_DISPATCH_POLL": "dispatch_poll",
    "FAVAD_DISPATCH_BATCH": "dispatch_batch",
    "FAVAD_DISPATCH_CONCURRENCY": "dispatch_concurrency",
    "FAVAD_DISPATCH_IN_SERVE": "dispatch_in_serve",
    "FAVAD_ESCALATE_AFTER_HOURS": "escalate_after_hours",
    "FAVAD_ATTACHMENT_MAX_BYTES": "attachment_max_bytes",
    "FAVAD_RECORDING_URL_BASE": "recording_url_base",
    "FAVAD_AMI_HOST": "ami_host",
    "FAVAD_AMI_PORT": "ami_port",
    "FAVAD_AMI_USERNAME": "ami_username",
    "FAVAD_AMI_SECRET": "ami_secret",
    "FAVAD_AMI_TIMEOUT": "ami_timeout",
    "FAVAD_DIALPLAN_FILE": "dialplan_file",
    "FAVAD_DIALPLAN_TEMPLATES": "dialplan_templates",
    "FAVAD_DIALPLAN_EXTENSION": "dialplan_extension",
    "FAVAD_FASTAGI_URL": "fastagi_url",
    "FAVAD_FASTAGI_FAILOVER_URL": "fastagi_failover_url",
    "FAVAD_CLASSIC_AGI": "classic_agi",
    "FAVAD_PROMPT_FORMATS": "prompt_formats",
    "FAVAD_PROMPT_RECORDINGS_DIR": "prompt_recordings_dir",
    "FAVAD_LINK_KEYS": "link_keys",
    "FAVAD_LINK_TTL_DAYS": "link_ttl_days",
    "FAVAD_PUBLIC_URL": "public_url",
    "FAVAD_WEB_HOST": "web_host",
    "FAVAD_WEB_PORT": "web_port",
    "FAVAD_WEB_IN_SERVE": "web_in_serve",
    "FAVAD_OFFICE_CALENDAR": "office_calendar",
    "FAVAD_ACK_TARGET_HOURS": "ack_target_hours",
    "FAVAD_REPORT_RECIPIENTS": "report_recipients",
    "FAVAD_REPORTS_DIR": "reports_dir",
    "FAVAD_RETENTION_RECORDING_DAYS": "retention_recording_days",
    "FAVAD_STAFF": "staff",
    "FAVAD_STAFF_OS_USERS": "staff_os_users",
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
    recordings_group: str = ""  # Asterisk's group, given the recordings folder (02770); empty: no change
    sounds_dir: str = ""  # empty: data_dir/sounds; on an Asterisk box /var/lib/asterisk/sounds
    menu_file: str = ""  # empty: the packaged ivr/menu.toml
    caller_hash_key: str = ""  # a seed for the first month's caller key (common/keyring.py); empty: random
    keys_dir: str = ""  # caller and tracking keys, 0700; empty: favad-keys beside data_dir, never inside it
    tracking_key: str = ""  # empty: keys_dir/tracking.key (several servers must share it)
    key_grace_days: int = 2  # a month's caller key and counts are destroyed this long after it ends
    limit_complaints_day: int = 5  # complaints one phone may file per day; 0: no limit
    limit_complaints_month: int = 20
    limit_guesses_day: int = 10  # unknown tracking codes one phone may try per day, across calls
    limit_guesses_month: int = 30
    counts_flush_min: float = 300.0  # seconds: caller counts go to the database at a random moment
    counts_flush_max: float = 900.0  # between these, apart from every call's own write
    operator_queue: str = ""  # empty: no operator, menu key 0 is not offered
    sla_hours: float = 3.0
    max_connections: int = 4000
    shutdown_grace: float = 30.0
    log_level: str = "INFO"
    log_format: str = "text"  # json: one JSON object per line (journald, log shippers), redacted alike
    metrics_host: str = "127.0.0.1"  # /healthz and /metrics of `favad serve` (service/metrics.py)
    metrics_port: int = 0  # 0: not served
    config_file: str = ""
    warnings: tuple[str, ...] = field(default=())
    # forwarding to inspection units (dispatch/)
    smtp_host: str = ""  # empty: each email is written to the local Maildir instead
    smtp_port: int = 0  # 0: 587 for starttls, 465 for tls, 25 for none
    smtp_security: str = "starttls"  # starttls | tls (implicit, "SMTPS") | none
    smtp_user: str = ""  # empty: no login
    smtp_password: str = ""
    smtp_ca_file: str = ""  # empty: the system's CAs; else a PEM file (an in-house CA)
    smtp_timeout: float = 30.0
    mail_from: str = "noreply@favad.localhost"  # its domain also names the Message-IDs
    maildir: str = ""  # empty: data_dir/maildir
    sms_url: str = ""  # e.g. https://api.kavenegar.com; empty: SMS appended to sms_file
    sms_api_key: str = ""
    sms_sender: str = ""  # the provider's line number; empty: the account's default line
    sms_timeout: float = 10.0
    sms_file: str = ""  # empty: data_dir/sms.log
    dispatch_max_tries: int = 15  # then the message is a dead letter (`favad outbox retry`)
    dispatch_backoff_base: float = 30.0  # seconds before the 2nd try; doubles each try
    dispatch_backoff_max: float = 1800.0
    dispatch_lease: float = 420.0  # seconds a claimed message is a dispatcher's own (> the longest send)
    dispatch_poll: float = 0.2  # seconds between looks at an empty outbox
    dispatch_batch: int = 20
    dispatch_concurrency: int = 4  # messages one dispatcher has in flight (connections it holds)
    dispatch_in_serve: int = 1  # 0: `favad serve` leaves the outbox to `favad dispatch`
    escalate_after_hours: float = 1.0  # working time before a complaint not taken up escalates
    attachment_max_bytes: int = 5_000_000  # larger voice descriptions go as a link
    recording_url_base: str = ""  # where recordings are served, for those links; empty: no link
    # operators and admins: AMI, the generated dialplan, prompt audio (ami/, dialplan/, prompts/)
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "favad"
    ami_secret: str = ""
    ami_timeout: float = 5.0  # seconds for any AMI action, the login included
    dialplan_file: str = ""  # empty: data_dir/asterisk/favad-128.conf; on Asterisk /etc/asterisk/...
    dialplan_templates: str = ""  # empty: the packaged dialplan/templates
    dialplan_extension: str = "128"  # the number the province trunks deliver
    fastagi_url: str = ""  # empty: agi://listen_host:listen_port/script
    fastagi_failover_url: str = ""  # comma-separated FastAGI servers, tried in turn while none took the call
    classic_agi: str = ""  # e.g. favad-agi (in agi-bin): the last resort after FastAGI
    prompt_formats: str = "wav"  # comma-separated: wav, sln, alaw, ulaw, gsm
    prompt_recordings_dir: str = ""  # studio recordings <prompt-id>.<any>; empty: data_dir/studio
    # the inspection units' page, the figures and the reports (web/, accountability/, reports/)
    link_keys: str = ""  # comma-separated, newest first (it signs, all verify); empty: data_dir/link-keys
    link_ttl_days: float = 14.0  # how long a unit's link works after its message is sent
    public_url: str = ""  # the page as units reach it, e.g. https://128.example.ir; empty: http://web_host:web_port
    web_host: str = "127.0.0.1"
    web_port: int = 8128
    web_in_serve: int = 1  # 0: `favad serve` leaves the units' page to `favad web serve`
    office_calendar: str = ""  # TOML with office hours and holidays; empty: clock/calendar.toml
    ack_target_hours: float = 1.0  # office hours from filing to a unit's acknowledgement
    report_recipients: str = ""  # YAML: each agency's minister's office and inspection manager; empty: the demo file
    reports_dir: str = ""  # empty: data_dir/reports
    # retention (retention/): what is deleted when
    retention_recording_days: int = 90  # a recording goes this long after its complaint is resolved
    # the centre's staff acting from the command line (accountability/commands.py)
    staff: str = ""  # comma-separated names one may act as (`--as`); empty: the OS user's own name
    staff_os_users: str = ""  # comma-separated OS users who may act; empty: whoever can run favad

    @property
    def db_url(self) -> str:
        """The database's URL, a multi-host list in the one spelling SQLAlchemy reads (config/dburl.py)."""
        if self.database_url:
            return dburl.normalise(self.database_url)
        return f"sqlite:///{Path(self.data_dir).resolve() / 'favad.sqlite3'}"

    @property
    def recordings_path(self) -> Path:
        return Path(self.recordings_dir or Path(self.data_dir, "recordings")).resolve()

    @property
    def sounds_path(self) -> str:
        return str(Path(self.sounds_dir or Path(self.data_dir, "sounds")).resolve())

    @property
    def keys_path(self) -> Path:
        data = Path(self.data_dir).resolve()
        return Path(self.keys_dir).resolve() if self.keys_dir else data.parent / f"{data.name}-keys"

    def keyring(self):
        """The caller and tracking keys (common/keyring.py)."""
        from common.keyring import Keyring

        return Keyring(self.keys_path, self.caller_hash_key, self.tracking_key, self.key_grace_days)

    def public(self) -> dict:
        """Settings as a dict with secrets masked, for `favad config show`."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "********"
            elif isinstance(value, str):
                value = checks.mask_text(value)  # a password in any URL, its query string included
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def load(path: str | None = None, environ: dict | None = None) -> Settings:
    """Build Settings from defaults, the TOML file and the environment; every problem found is
    one line of the ConfigError."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    warnings: list[str] = []
    bad: list[str] = []
    kinds = checks.types(Settings)
    path = path or environ.get("FAVAD_CONFIG") or ("favad.toml" if Path("favad.toml").exists() else "")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {path}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"configuration file {path} is not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise ConfigError(f"configuration file {path} cannot be read: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"configuration file {path} is not valid TOML: {e}") from None
        known = set(kinds) - {"config_file", "warnings"}
        for key, value in data.items():
            if key not in known:
                bad.append(f"unknown setting {key!r} in {path}")
                continue
            values[key], problem = checks.coerce(kinds[key], key, value)
            bad += [problem] if problem else []
        if _open_to_others(p.stat()) and _secrets_in(data):
            warnings.append(f"{path} holds secrets and is readable by other users: chmod 600 {path}")
        values["config_file"] = str(p)
    from_env = {}
    for var, name in ENV.items():
        if environ.get(var, "") != "":
            from_env[name] = var
            values[name], problem = checks.coerce(kinds[name], f"{name} ({var})", environ[var])
            bad += [problem] if problem else []
    # the values of the right type are checked for range too: every problem is said at once
    settings = replace(Settings(), **{k: v for k, v in values.items() if v is not None})
    bad += checks.problems(settings, from_env) + dburl.problems(settings.database_url)
    if bad:
        raise ConfigError("\n".join(bad))
    warnings += _open_keys(settings) + checks.advice(settings) + dburl.advice(settings.database_url)
    return replace(settings, warnings=tuple(warnings))


def _open_to_others(st: os.stat_result) -> bool:
    """Readable by others, or by a group other than the one this user reads it through: a file
    root:favad 0640 (`favad system install`) is read by favad's user through its own group."""
    through_group = st.st_uid == 0 != os.geteuid() and st.st_gid == os.getegid()
    return bool(st.st_mode & stat.S_IROTH or (st.st_mode & stat.S_IRGRP and not through_group))


def _secrets_in(data: dict) -> bool:
    """A secret setting, or a URL with a password or a secret in its query string."""
    return any((k in SECRET_FIELDS and v) or (isinstance(v, str) and "://" in v and checks.url_has_secret(v))
               for k, v in data.items())


def _open_keys(settings: Settings) -> list[str]:
    """The keys folder (caller and tracking keys) must be this user's alone."""
    try:
        mode = settings.keys_path.stat().st_mode
    except OSError:
        return []  # not made yet (it is made 0700) or out of reach: the keyring says so when used
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"the keys folder {settings.keys_path} is open to other users: chmod 700 {settings.keys_path}"]
    return []
