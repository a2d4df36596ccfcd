"""The complaint's write overlapped with speech (issue 17), on the wire: the prompt that
promises nothing goes out while the write is held up by a real lock in PostgreSQL, and the
tracking code's first digit only once the row is committed; a caller who hangs up meanwhile
still leaves the complaint filed."""
from __future__ import annotations

import asyncio
import sys
import threading
import time

import psycopg
import pytest
from sqlalchemy import func, select

from conftest import favad_env, running_server
from db.models import Complaint
from pbxsim.caller import Caller
from pbxsim.classic import run_agi
from pbxsim.fastagi import run_call
from test_calls import FILE_ONE, call_records, spoken_code

postgres = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
HOLD = 0.8  # seconds the lock is held once the wait prompt has gone out


class Locker:
    """Another PostgreSQL connection holding SHARE on complaints: reads go on, the complaint's
    INSERT waits, as it would behind a slow disk or a long transaction."""

    def __init__(self, url: str):
        plain = url.split("?", 1)[0]
        schema = url.split("search_path%3D", 1)[1]
        self.lock = psycopg.connect(plain, options=f"-csearch_path={schema}")
        self.look = psycopg.connect(plain, options=f"-csearch_path={schema}", autocommit=True)
        self.lock.execute("LOCK TABLE complaints IN SHARE MODE")
        self.released_at: float | None = None
        self.seen: list[tuple[str, int, bool]] = []  # (prompt, complaints committed, lock released)

    def stored(self) -> int:
        return self.look.execute("SELECT count(*) FROM complaints").fetchone()[0]

    def release(self) -> None:
        self.released_at = time.monotonic()
        self.lock.commit()

    def on_prompt(self, name: str) -> None:
        """Called by the simulated Asterisk as each prompt starts (on its event loop)."""
        if name == "favad/filed-wait" and self.released_at is None:
            threading.Timer(HOLD, self.release).start()
        if self.seen or name == "favad/filed-wait":  # from the submission on
            self.seen.append((name, self.stored(), self.released_at is not None))

    def close(self) -> None:
        if self.released_at is None:
            self.release()
        self.lock.close()
        self.look.close()


def fastagi_call(backend, locker: Locker | None, caller: Caller):
    async def scenario():
        async with running_server(backend) as (_server, port):
            return await run_call("127.0.0.1", port, args=("28",), caller=caller,
                                  sounds_dir=backend.settings.sounds_path,
                                  on_prompt=locker.on_prompt if locker else None)
    return asyncio.run(scenario())


def classic_call(backend, locker: Locker, caller: Caller):
    s = backend.settings
    return asyncio.run(run_agi([sys.executable, "-m", "cli", "agi"], args=("28",), caller=caller,
                               sounds_dir=s.sounds_path, env=favad_env(s), on_prompt=locker.on_prompt))


@postgres
@pytest.mark.parametrize("driver", [fastagi_call, classic_call], ids=["fastagi", "classic"])
def test_the_wait_prompt_goes_out_before_the_write_and_the_code_only_after_the_commit(backend, driver):
    locker = Locker(backend.settings.db_url)
    try:
        started = time.monotonic()
        result = driver(backend, locker, Caller(FILE_ONE))
    finally:
        locker.close()
    played = result.played
    assert played.index("favad/filed-wait") < played.index("favad/filed-code-is")
    # the wait prompt started while the write was held back: nothing stored yet
    assert locker.seen[0] == ("favad/filed-wait", 0, False)
    first_digit = next(seen for seen in locker.seen if seen[0].startswith("favad/digits/"))
    assert first_digit[1:] == (1, True), locker.seen  # committed, and only after the lock went
    code = spoken_code(played)
    with backend.Session() as s:
        assert s.scalars(select(Complaint.code_hash)).all() == [backend.code_hash(code)]
    assert time.monotonic() - started >= HOLD


@postgres
def test_a_caller_who_hangs_up_during_the_wait_prompt_still_files_the_complaint(backend):
    # no lock: where the wait prompt falls among the media commands
    full = fastagi_call(backend, None, Caller(FILE_ONE))
    media = full.played.index("favad/filed-wait") + 1
    locker = Locker(backend.settings.db_url)
    try:
        result = fastagi_call(backend, locker, Caller(FILE_ONE, hangup_at=media))
    finally:
        locker.close()
    assert result.hungup_by_caller and "favad/filed-code-is" not in result.played
    assert locker.seen[0] == ("favad/filed-wait", 1, False)  # the probe's complaint, not this one
    with backend.Session() as s:
        assert s.scalar(select(func.count()).select_from(Complaint)) == 2
    backend.close()  # the call records nobody waited for
    assert call_records(backend) == ["complaint_filed", "complaint_filed"]
