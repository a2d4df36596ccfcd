"""`favad doctor`: a deployment checked end to end, each check with a one-line fix.

Each check is a function of the settings that returns ``(ok, what was found, the fix)``; none
sends a message or changes a file. The ones that need Asterisk ask it over AMI.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from config import Settings

MIN_FREE_BYTES = 1_000_000_000  # the journal keeps complaints while the database is away
PROBE_TIMEOUT = 10.0  # seconds at most for the mail server and the SMS provider to answer


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    found: str
    fix: str = ""


def _config(s: Settings):
    if s.warnings:
        return False, s.warnings[0], "see the warning; `favad config show` lists the settings"
    return True, f"{s.config_file or 'defaults and environment'} loaded, no warnings", ""


def _database(s: Settings):
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from config import dburl
    from db.engine import make_engine
    from migrations.run import alembic_config

    engine = make_engine(s.db_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            reached = _server(conn)
    except Exception as e:
        return False, f"cannot connect ({type(e).__name__})", "check database_url and that the server is up"
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(s.db_url)).get_current_head()
    if current != head:
        return False, f"schema at {current}, code expects {head}", "run `favad db upgrade`"
    if reached.endswith("(a standby)"):
        return False, f"{reached}: its writes are refused", \
            "list the primary's host in database_url, or add &target_session_attrs=read-write"
    if advice := dburl.advice(s.db_url):
        return False, f"{reached}, schema at head; {advice[0].split(': ', 1)[0]}", \
            "add &target_session_attrs=read-write to database_url (a failover must not send writes to a standby)"
    return True, f"{reached}, schema at head ({head})", ""


def _server(conn) -> str:
    """Which server a connection reached, and whether it takes writes (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return "reachable"
    info = conn.connection.dbapi_connection.info
    standby = conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar()
    return f"reached {info.host}:{info.port} " + ("(a standby)" if standby else "(the primary)")


def _keys(s: Settings):
    path = s.keys_path
    if not path.is_dir():
        return False, f"{path} missing", f"restore the keys (`favad restore --keys`) or start `favad serve` once"
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False, f"{path} open to other users", f"chmod 700 {path}"
    if not s.tracking_key and not (path / "tracking.key").exists():
        return False, "no tracking key", "restore the keys, or set tracking_key as on the other servers"
    return True, f"{path} private, tracking key present", ""


def _fastagi(s: Settings):
    host = "127.0.0.1" if s.listen_host in ("0.0.0.0", "::", "") else s.listen_host
    try:
        socket.create_connection((host, s.listen_port), timeout=3).close()
    except OSError as e:
        return False, f"{host}:{s.listen_port} not answering ({e.strerror or e})", \
            "systemctl start favad-serve (journalctl -u favad-serve says why it stopped)"
    return True, f"{host}:{s.listen_port} answering", ""


def _ami(s: Settings, job=None):
    from ami import AmiClient, AmiError

    if not s.ami_secret:
        return False, "ami_secret is empty", "set ami_host, ami_username and ami_secret (manager.conf)"

    async def go():
        ami = AmiClient.from_settings(s, events=False)
        try:
            return await (job(ami) if job else ami.ready(s.ami_timeout))
        finally:
            await ami.logoff()
    try:
        return asyncio.run(go())
    except AmiError as e:
        return e


def _ami_login(s: Settings):
    out = _ami(s)
    if isinstance(out, tuple):
        return out
    if isinstance(out, Exception):
        return False, f"{s.ami_host}:{s.ami_port}: {out}", \
            "check manager.conf's [favad] user (read: call,agent; write: system,command) and ami_secret"
    return True, f"logged in as {s.ami_username} at {s.ami_host}:{s.ami_port}", ""


def _modules(s: Settings):
    from dialplan.modules import ModulesUnknown, missing, needed
    from prompts.formats import configured

    text = _rendered_or_deployed(s)
    needs = needed(text, configured(s))
    try:
        out = _ami(s, lambda ami: missing(ami, needs))
    except ModulesUnknown as e:
        return False, str(e), "check AMI (above)"
    if isinstance(out, tuple):
        return out
    if isinstance(out, Exception):
        return False, f"cannot ask Asterisk: {out}", "check AMI (above)"
    if out:
        return False, f"not loaded: {', '.join(n.name for n in out)}", out[0].advice()
    return True, f"loaded: {', '.join(n.name for n in needs)}", ""


def _rendered_or_deployed(s: Settings) -> str:
    path = Path(s.dialplan_file or Path(s.data_dir, "asterisk", "favad-128.conf"))
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _dialplan(s: Settings):
    from clock import today
    from db.engine import make_engine, make_sessionmaker
    from dialplan.render import render, trunks

    path = Path(s.dialplan_file or Path(s.data_dir, "asterisk", "favad-128.conf"))
    engine = make_engine(s.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            text = render(s, trunks(session, today()))
    except Exception as e:
        return False, f"cannot render ({type(e).__name__})", "fix the database check first"
    finally:
        engine.dispose()
    if not path.exists():
        return False, f"{path} missing", "favad dialplan deploy"
    if path.read_text(encoding="utf-8") != text:
        return False, f"{path} differs from the rendered dialplan", "favad dialplan diff, then favad dialplan deploy"
    return True, f"{path} is the rendered dialplan", ""


def _prompts(s: Settings):
    from dialplan.check import check
    from ivr.catalog import needed
    from prompts.formats import configured

    _texts, ids = needed(s, lambda msg: None)
    problems = [p for p in check(_rendered_or_deployed(s), s.sounds_path, configured(s), set(ids))
                if p.kind == "prompt"]
    if problems:
        return False, f"{len(problems)} prompt problem(s), e.g. {problems[0].message}", "favad prompts build"
    return True, f"every prompt in {', '.join(configured(s))} under {s.sounds_path}", ""


def _recordings(s: Settings):
    path = s.recordings_path
    if not path.is_dir():
        return False, f"{path} missing", "favad system install, or mkdir with mode 2770 in Asterisk's group"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return False, f"{path} not readable and writable by this user", f"chmod 2770 {path}; chgrp {s.recordings_group or 'asterisk'} {path}"
    st = path.stat()
    if s.recordings_group and st.st_mode & 0o070 != 0o070:
        return False, f"{path} not writable by group {s.recordings_group}", f"chmod 2770 {path}"
    return True, f"{path} writable here and by its group", ""


def _smtp(s: Settings):
    """Connect, EHLO, STARTTLS and login as the dispatcher would, then QUIT: no MAIL command."""
    import smtplib
    import ssl

    from dispatch.channels.email import Smtp

    if not s.smtp_host:
        return True, "smtp_host empty: emails are written to the Maildir (set smtp_host to send them)", ""
    smtp = Smtp(s)
    smtp.timeout = min(smtp.timeout, PROBE_TIMEOUT)
    where = f"{smtp.host}:{smtp.port} ({smtp.security})"
    try:
        conn = smtp._connect()
        try:
            code, _ = conn.ehlo()  # STARTTLS and login have sent it already; once more is harmless
            if code != 250:
                return False, f"{where}: EHLO answered {code}", "check smtp_host: it is not a mail server that takes EHLO"
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    except smtplib.SMTPAuthenticationError as e:
        return False, f"{where}: login refused ({e.smtp_code})", "check smtp_user and smtp_password"
    except smtplib.SMTPNotSupportedError:
        return False, f"{where}: no STARTTLS offered", \
            'set smtp_security = "tls" (port 465) if the server speaks TLS at once, or ask for STARTTLS'
    except ssl.SSLError as e:
        return False, f"{where}: TLS failed ({e.reason or type(e).__name__})", \
            "set smtp_ca_file to the CA of the server's certificate, or check smtp_security and smtp_port"
    except (smtplib.SMTPException, OSError) as e:
        return False, f"{where}: {_why(e)}", \
            "check smtp_host and smtp_port, and that the firewall lets this machine reach the mail server"
    return True, f"{where}: answered" + (f", logged in as {smtp.user}" if smtp.user else ""), ""


def _sms(s: Settings):
    """A GET of sms_url itself (not the API's path: it holds the key and sends): it answers."""
    import http.client
    import ssl
    import urllib.parse

    if not s.sms_url:
        return True, "sms_url empty: SMS are appended to sms_file (set sms_url to send them)", ""
    url = urllib.parse.urlsplit(s.sms_url)
    where = f"{url.scheme}://{url.netloc}{url.path}"  # a key in the URL's query stays out of the output
    timeout = min(s.sms_timeout, PROBE_TIMEOUT)
    try:
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout,
                                               context=ssl.create_default_context())
        elif url.scheme == "http":
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        else:
            return False, f"{where}: not an http(s) URL", "set sms_url to the provider's base URL, e.g. https://api.kavenegar.com"
        try:
            conn.request("GET", url.path or "/", headers={"User-Agent": "favad doctor"})
            status = conn.getresponse().status
        finally:
            conn.close()
    except ssl.SSLError as e:
        return False, f"{where}: TLS failed ({e.reason or type(e).__name__})", \
            "check sms_url's scheme (https or http) and the machine's CA certificates"
    except (http.client.HTTPException, OSError) as e:
        return False, f"{where}: {_why(e)}", \
            "check sms_url, and that the firewall lets this machine reach the provider over HTTP(S)"
    return True, f"{where}: answers (HTTP {status})", ""


def _why(e: Exception) -> str:
    if isinstance(e, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "no answer in time"
    return f"{type(e).__name__} {getattr(e, 'strerror', None) or e}".strip()


def _disk(s: Settings):
    folder = Path(s.data_dir)
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    if free < MIN_FREE_BYTES:
        return False, f"{free // 1_000_000} MB free under {folder}", "free disk space: the journal needs it during an outage"
    return True, f"{free // 1_000_000_000} GB free under {folder}", ""


def _clock(s: Settings):
    offset = time.localtime().tm_gmtoff
    synced = Path("/run/systemd/timesync/synchronized").exists() or shutil.which("chronyc") is not None
    now = dt.datetime.now(dt.timezone.utc)
    if now.year < 2024:
        return False, f"the clock says {now:%Y-%m-%d}", "timedatectl set-ntp true"
    where = f"UTC{offset // 3600:+d}" if offset else "UTC"
    return True, f"{now:%Y-%m-%d %H:%M}Z, local {where}" + ("" if synced else " (no NTP seen)"), ""


CHECKS = [("configuration", _config), ("database", _database), ("keys", _keys),
          ("fastagi", _fastagi), ("ami", _ami_login), ("modules", _modules),
          ("dialplan", _dialplan), ("prompts", _prompts), ("recordings", _recordings),
          ("smtp", _smtp), ("sms", _sms), ("disk", _disk), ("clock", _clock)]


def run(settings: Settings, only: tuple[str, ...] = ()) -> list[Result]:
    results = []
    for name, check in CHECKS:
        if only and name not in only:
            continue
        try:
            ok, found, fix = check(settings)
        except Exception as e:  # a check that breaks is a failed check, not a traceback
            ok, found, fix = False, f"the check failed ({type(e).__name__}: {e})", "see the message"
        results.append(Result(name, ok, found, fix))
    return results
