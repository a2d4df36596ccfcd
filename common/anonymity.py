"""Caller identity hygiene: read the number once, keep a keyed hash, drop everything else.

Only the headers in ``SAFE_HEADERS`` ever leave ``scrub()``; the number and name, the channel
name (it can carry a SIP user), the uniqueid (it joins to Asterisk's CDR) and the redirecting
number are dropped on arrival.
"""
from __future__ import annotations

import hashlib
import hmac
import re


SAFE_HEADERS = frozenset({
    "agi_network", "agi_network_script", "agi_request", "agi_language", "agi_type",
    "agi_version", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
})
_PERSIAN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def normalize_number(number: str) -> str | None:
    """The national significant number (``9121234567``) or None if there is no usable number."""
    digits = re.sub(r"\D", "", (number or "").translate(_PERSIAN))
    for prefix in ("0098", "98", "0"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 7:
            digits = digits[len(prefix):]
            break
    return digits if len(digits) >= 5 else None


def caller_hash(number: str, key: bytes, period: str) -> str | None:
    """HMAC-SHA256 of the normalized number, keyed and bound to a period (rotates monthly)."""
    national = normalize_number(number)
    if national is None:
        return None
    return hmac.new(key, f"{period}|{national}".encode(), hashlib.sha256).hexdigest()


def scrub(headers: dict[str, str], key: bytes, period: str) -> tuple[dict[str, str], str | None]:
    """(the headers safe to keep, the caller hash); the identifying headers are gone."""
    number = headers.get("agi_callerid", "")
    safe = {k: v for k, v in headers.items() if k in SAFE_HEADERS or k.startswith("agi_arg_")}
    return safe, caller_hash(number, key, period)
