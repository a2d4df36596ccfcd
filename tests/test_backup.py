"""`favad backup` and `favad restore` round-trip into a fresh database: the complaints, their
history, follow-up by phone (the tracking key) and the units' links (the link keys) still work;
the keys travel in a file of their own, never in the database's backup."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tarfile

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import main
from common import links
from common.keyring import Keyring
from conftest import favad_env
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint, ComplaintEvent
from db.store import complaint_status


def cli(env, *args):
    return CliRunner(mix_stderr=False).invoke(main, list(args), env=env)


def file_one(backend) -> str:
    """A complaint filed the way a call files it; the code the caller heard."""
    from ivr.events import AwaitFiled, ComplaintDraft, FileComplaint

    _, ctx = backend.open_call({"agi_callerid": "09121234567", "agi_arg_1": "28"})
    draft = ComplaintDraft(province_code="28", agency_code="101", office_code=None,
                           indicator_code="rules_not_transparent", recording=None)
    backend.perform(FileComplaint(draft), ctx)
    return backend.perform(AwaitFiled(), ctx).tracking_code


def snapshot(url, code_hash):
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        got = (s.scalar(select(func.count()).select_from(Complaint)),
               s.scalar(select(func.count()).select_from(ComplaintEvent)),
               complaint_status(s, code_hash))
    engine.dispose()
    return got


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_backup_and_restore_round_trip_into_a_fresh_database(backend, migrated, tmp_path, db_url):
    code = file_one(backend)
    assert code
    link_key = links.keys(migrated)[0] if links.keys(migrated) else None
    before = snapshot(migrated.db_url, backend.code_hash(code))
    assert before[0] >= 1 and before[2] is not None
    env = favad_env(migrated)
    done = cli(env, "backup", str(tmp_path / "db.backup"), "--keys", str(tmp_path / "keys.tar"))
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "db.backup").stat().st_mode & 0o777 == 0o600
    names = tarfile.open(tmp_path / "keys.tar").getnames()
    assert names and all(n.startswith("keys/") or n == "link-keys" for n in names)
    key_bytes = [p.read_bytes() for p in migrated.keys_path.glob("*") if p.is_file()]
    blob = (tmp_path / "db.backup").read_bytes()
    assert not [k for k in key_bytes if len(k) >= 16 and k in blob]  # no key inside the database's backup

    backend.engine.dispose()
    with _fresh_database(migrated.db_url, tmp_path) as url:
        fresh = dataclasses.replace(migrated, database_url=url, data_dir=str(tmp_path / "new/var"),
                                    keys_dir=str(tmp_path / "new/keys"))
        new_env = {**favad_env(fresh), "FAVAD_KEYS_DIR": fresh.keys_dir}
        done = cli(new_env, "restore", str(tmp_path / "db.backup"), "--keys", str(tmp_path / "keys.tar"))
        assert done.exit_code == 0, done.stderr
        restored = Keyring(fresh.keys_path, "", "", fresh.key_grace_days)
        from common.keyring import code_hash
        assert snapshot(url, code_hash(restored.tracking_key(), code)) == before  # follow-up by phone
        if link_key is not None:
            assert links.keys(fresh)[0] == link_key  # a unit's link still opens
        again = cli(new_env, "restore", str(tmp_path / "db.backup"))
        assert again.exit_code == 1 and "not empty" in again.stderr


def test_the_keys_never_go_into_the_databases_file(migrated, tmp_path):
    done = cli(favad_env(migrated), "backup", str(tmp_path / "x"), "--keys", str(tmp_path / "x"))
    assert done.exit_code == 2 and "file of their own" in done.stderr


@contextlib.contextmanager
def _fresh_database(url: str, tmp_path):
    """SQLite: a new file. PostgreSQL: the test's schema dropped, as on a new server (the
    dump names its schema; a new server's is the same `public`)."""
    (tmp_path / "new/var").mkdir(parents=True)
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/new/var/favad.sqlite3"
        return
    from sqlalchemy import create_engine, text

    from conftest import PG_URL

    schema = url.rsplit("search_path%3D", 1)[1]
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    yield url  # pg_schema() drops it again afterwards
