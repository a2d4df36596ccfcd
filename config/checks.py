"""Each setting's type and range, checked on load: every problem found, one line each.

A value is read once, from the TOML file or an environment variable (always text), into the
type its field declares; then its range is checked. A whole number stays whole (``1.9`` is not
a port), a number is finite (``nan``, ``inf``), booleans are not numbers, and a number with no
range of its own here may not be negative.
"""
from __future__ import annotations

import math
import re
from dataclasses import fields
from urllib.parse import unquote, urlsplit

DAY_S = 86_400.0
# field -> (lowest, highest), both included
RANGES: dict[str, tuple[float, float]] = {
    "listen_port": (0, 65535),  # 0: any free port (tests)
    "web_port": (0, 65535),
    "metrics_port": (0, 65535),  # 0: no /healthz or /metrics
    "smtp_port": (0, 65535),  # 0: the security's usual port
    "ami_port": (1, 65535),
    "key_grace_days": (0, 31),
    "limit_complaints_day": (0, 10_000),  # 0: no limit
    "limit_complaints_month": (0, 100_000),
    "limit_guesses_day": (0, 10_000),
    "limit_guesses_month": (0, 100_000),
    "counts_flush_min": (1, DAY_S),
    "counts_flush_max": (1, DAY_S),
    "sla_hours": (0.1, 24 * 365),
    "max_connections": (1, 100_000),
    "shutdown_grace": (0, 3600),
    "smtp_timeout": (0.1, 600),
    "sms_timeout": (0.1, 600),
    "dispatch_max_tries": (1, 1000),
    "dispatch_backoff_base": (0.01, DAY_S),
    "dispatch_backoff_max": (0.01, 7 * DAY_S),
    "dispatch_lease": (1, DAY_S),
    "dispatch_poll": (0.01, 60),
    "dispatch_batch": (1, 10_000),
    "dispatch_concurrency": (1, 1000),
    "dispatch_in_serve": (0, 1),
    "escalate_after_hours": (0, 24 * 365),
    "attachment_max_bytes": (0, 1_000_000_000),
    "ami_timeout": (0.1, 600),
    "link_ttl_days": (0.1, 3650),  # 2.4 hours to ten years (a link's expiry is 32-bit seconds)
    "web_in_serve": (0, 1),
    "ack_target_hours": (0.1, 24 * 365),
    "retention_recording_days": (1, 36_500),
}
# field -> the values it may take (compared without case)
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "smtp_security": ("starttls", "tls", "none"),
    "log_format": ("text", "json"),
}
URLS = ("public_url", "recording_url_base", "sms_url")  # http(s) with a host when set
NAME = re.compile(r"[a-z_][a-z0-9._-]{0,31}", re.IGNORECASE)  # an OS user or a staff name
SECRET_PARAM = re.compile(r"pass|pwd|secret|key|token|auth|cred|sig", re.IGNORECASE)
MASK = "********"


def types(settings_cls) -> dict[str, str]:
    return {f.name: f.type for f in fields(settings_cls)}


def coerce(kind: str, name: str, raw) -> tuple[object, str | None]:
    """``raw`` (from TOML, or text from the environment) as ``kind``; or a problem."""
    if isinstance(raw, bool) or isinstance(raw, (list, dict)):
        return None, f"{name} must be {_kind(kind)}, got {_show(raw)}"
    if kind == "int":
        if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
            raw = int(raw)
        if isinstance(raw, int):
            return raw, None
        return None, f"{name} must be a whole number, got {_show(raw)}"
    if kind == "float":
        try:
            value = float(raw) if isinstance(raw, (str, int, float)) else None
        except ValueError:
            value = None
        if value is None:
            return None, f"{name} must be a number, got {_show(raw)}"
        if not math.isfinite(value):
            return None, f"{name} must be a finite number, got {_show(raw)}"
        return value, None
    if isinstance(raw, int):
        return str(raw), None  # dialplan_extension = 128: what was meant is clear
    if not isinstance(raw, str):
        return None, f"{name} must be text, got {_show(raw)}"
    if "\x00" in raw:
        return None, f"{name} holds a NUL character"
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the environment, kept as surrogates
        return None, f"{name} is not UTF-8 text"
    return raw, None


def problems(settings, where: dict[str, str] | None = None) -> list[str]:
    """What is wrong with settings whose values have the right types: ranges, choices, pairs.
    ``where`` names the environment variable a value came from, to say so."""
    out = []
    for name, kind in types(type(settings)).items():
        value = getattr(settings, name)
        if kind not in ("int", "float"):
            continue
        label = f"{name} ({where[name]})" if where and name in where else name
        lo, hi = RANGES.get(name, (0, math.inf))
        if not lo <= value <= hi:
            where = f"at least {lo:g}" if hi == math.inf else f"between {lo:g} and {hi:g}"
            out.append(f"{label} must be {where}, got {value!r}")
    for name, allowed in CHOICES.items():
        value = getattr(settings, name, None)
        if value is not None and value.lower() not in {a.lower() for a in allowed}:
            out.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    for name in URLS:
        value = getattr(settings, name, "")
        if value and not _http_url(value):
            out.append(f"{name} must be an http:// or https:// address with a host, got {mask_text(value)!r}")
    if settings.counts_flush_min > settings.counts_flush_max:
        out.append(f"counts_flush_min ({settings.counts_flush_min:g}) must not exceed counts_flush_max "
                   f"({settings.counts_flush_max:g})")
    if settings.dispatch_backoff_base > settings.dispatch_backoff_max:
        out.append(f"dispatch_backoff_base ({settings.dispatch_backoff_base:g}) must not exceed "
                   f"dispatch_backoff_max ({settings.dispatch_backoff_max:g})")
    for name in ("staff", "staff_os_users"):
        for item in names(getattr(settings, name, "")):
            if not NAME.fullmatch(item):
                out.append(f"{name}: {item!r} is not a user name (letters, digits, . _ -; at most 32)")
    return out


def advice(settings) -> list[str]:
    """Settings that work but are likely a mistake: warnings, not errors."""
    out = []
    if settings.web_host in ("0.0.0.0", "::", "") and not settings.public_url:
        out.append(f"web_host is {settings.web_host or 'every address'!r} but public_url is not set: the "
                   f"units' links would point to http://{settings.web_host}:{settings.web_port} and posts "
                   f"from the page's real address are refused; set public_url")
    return out


def names(value: str) -> list[str]:
    """A comma-separated list setting, its items stripped."""
    return [x.strip() for x in value.split(",") if x.strip()]


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _kind(kind: str) -> str:
    return {"int": "a whole number", "float": "a number"}.get(kind, "text")


def _show(raw) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- secrets in text ------------------------------------------------------------------------
def mask_url(url: str) -> str:
    """A URL with its password and any secret-looking query parameter masked; the rest as given."""
    head, sep, query = url.partition("?")
    query, hash_, fragment = query.partition("#")
    scheme, colon, rest = head.partition("://")
    if colon and "@" in rest.split("/", 1)[0]:
        netloc, slash, path = rest.partition("/")
        creds, _, host = netloc.rpartition("@")
        if ":" in creds:
            head = f"{scheme}://{creds.split(':', 1)[0]}:{MASK}@{host}{slash}{path}"
    if sep:
        pairs = []
        for pair in query.split("&"):
            key, eq, _value = pair.partition("=")
            pairs.append(f"{key}={MASK}" if eq and SECRET_PARAM.search(unquote(key)) else pair)
        query = "&".join(pairs)
    return head + sep + query + hash_ + fragment


def url_has_secret(url: str) -> bool:
    return mask_url(url) != url


def mask_text(value: str) -> str:
    return mask_url(value) if "://" in value else value
