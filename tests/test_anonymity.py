"""Calls with known caller numbers and names through every path, then every byte the system
wrote is scanned for them: database (file or dump), logs, recordings and their names, stderr."""
from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from pathlib import Path

from conftest import favad_env, running_server
from pbxsim.caller import Caller
from pbxsim.classic import run_agi
from pbxsim.fastagi import run_call

CALLERS = [  # (number as Asterisk may send it, name)
    ("09121234567", "Test"),
    ("+989351112233", "علی رضایی"),
    ("00989190001122", "Zahra Mohammadi"),
    ("۰۹۳۰۵۵۵۶۶۷۷", "مریم"),
    ("9124445566", "Reza"),
]
PATHS = ["1 280101# 1 4 1 1 -", "1 * 102# 1 7 2 1 9 -", "1 280101# 1 8 - - -", "2 1234567890# - -",
         "0", "- - -", "1 210101# 2", ""]


def needles():
    """Every spelling a number or name could be written in."""
    out = set()
    for number, name in CALLERS:
        digits = number.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")).lstrip("+")
        national = re.sub(r"^(0098|98|0)", "", digits)
        out |= {national, "0" + national, "98" + national, number, name}
        out.add(national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")))
    return {n for n in out if n}


def scan(blob: bytes, where: str):
    for needle in needles():
        for enc in ("utf-8", "utf-16-le"):
            assert needle.encode(enc) not in blob, f"{needle!r} found in {where} ({enc})"


def database_bytes(settings) -> bytes:
    if settings.db_url.startswith("sqlite"):
        path = Path(settings.db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    base, _, opts = settings.db_url.partition("?options=-csearch_path%3D")
    return subprocess.run(["pg_dump", "--data-only", "-n", opts, base.replace("postgresql://", "postgresql://")],
                          check=True, capture_output=True).stdout


def test_no_caller_number_or_name_in_anything_the_system_wrote(backend, caplog, tmp_path):
    import dataclasses

    backend.settings = dataclasses.replace(backend.settings, operator_queue="favad-operators")
    caplog.set_level(logging.DEBUG)

    async def calls():
        async with running_server(backend) as (_server, port):
            for number, name in CALLERS:
                for keys in PATHS:
                    await run_call("127.0.0.1", port, script="favad", args=("28",),
                                   caller=Caller(keys, speak=True), sounds_dir=backend.settings.sounds_path,
                                   callerid=number, calleridname=name)
            for hangup_at in (1, 3, 6, 9):
                await run_call("127.0.0.1", port, script="favad", args=("28",),
                               caller=Caller(PATHS[0], speak=True, hangup_at=hangup_at),
                               sounds_dir=backend.settings.sounds_path,
                               callerid=CALLERS[1][0], calleridname=CALLERS[1][1])
    asyncio.run(calls())

    s = backend.settings
    env = favad_env(s, FAVAD_LOG_LEVEL="DEBUG")
    for number, name in CALLERS:
        r = asyncio.run(run_agi([sys.executable, "-m", "cli", "agi"], args=("28",),
                                caller=Caller(PATHS[0], speak=True), sounds_dir=s.sounds_path,
                                env=env, callerid=number, calleridname=name))
        scan(r.stderr, "classic AGI stderr")

    with backend.Session() as session:
        from sqlalchemy import func, select

        from db.models import CallerCount, CallRecord, Complaint
        assert session.scalar(select(func.count()).select_from(Complaint)) >= 10
        assert session.scalar(select(func.count()).select_from(CallRecord)) == \
            len(CALLERS) * (len(PATHS) + 1) + 4
    # the classic AGI calls left their counts in the spool; the server's next flush takes them in
    assert backend.ledger.flush() == len(CALLERS)
    with backend.Session() as session:
        # one counter per distinct caller: the spellings of one number hash alike
        assert session.scalar(select(func.count()).select_from(CallerCount)) == len(CALLERS)

    scan(database_bytes(s), "the database")
    scan(caplog.text.encode(), "the log")
    for path in [*Path(s.data_dir).rglob("*"), *s.recordings_path.rglob("*")]:
        scan(str(path).encode(), "a file name")
        if path.is_file():
            scan(path.read_bytes(), str(path))
