"""Tracking codes: 9 random digits and a Damm check digit (catches every single-digit typo
and every swap of neighbouring digits before any database lookup)."""
from __future__ import annotations

import secrets

from stdnum import damm

RANDOM_DIGITS = 9


def new_code() -> str:
    body = f"{secrets.randbelow(10**RANDOM_DIGITS):0{RANDOM_DIGITS}d}"
    return body + damm.calc_check_digit(body)


def is_well_formed(code: str) -> bool:
    return len(code) == RANDOM_DIGITS + 1 and code.isdigit() and damm.is_valid(code)
