"""Tracking codes and case numbers.

A tracking code is the caller's secret: 9 random digits and a Damm check digit (catches every
single-digit typo and every swap of neighbouring digits before any database lookup). It is
read to the caller once and stored only as a keyed hash (common/keyring.py).

A case number is what staff, units and reports see: a reference of its own, drawn apart from
the code, in letters and digits (``7KQ2-M9XD``) that no phone keypad can enter as a code.
"""
from __future__ import annotations

import secrets

RANDOM_DIGITS = 9

# stdnum is imported when a code is made or checked, not with this module: its package imports
# ssl and pydoc, a sixth of what a classic AGI process would load before its first command


def new_code() -> str:
    from stdnum import damm

    body = f"{secrets.randbelow(10**RANDOM_DIGITS):0{RANDOM_DIGITS}d}"
    return body + damm.calc_check_digit(body)


def is_well_formed(code: str) -> bool:
    from stdnum import damm

    return len(code) == RANDOM_DIGITS + 1 and code.isdigit() and damm.is_valid(code)


CASE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read aloud without doubt


def new_case_number() -> str:
    body = "".join(secrets.choice(CASE_ALPHABET) for _ in range(8))
    return f"{body[:4]}-{body[4:]}"
