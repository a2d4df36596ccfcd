"""Multi-host PostgreSQL URLs (issue 19): every spelling libpq takes reaches SQLAlchemy's psycopg
dialect as the same host and port lists, a list without target_session_attrs is warned about,
a broken one is refused on load, and no printed form carries the password."""
from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from config import ConfigError, Settings, dburl, load
from config.checks import mask_url
from db.engine import make_engine
from service.backup import _pg

SAME = {"host": "db1,db2", "port": "5433,5434", "target_session_attrs": "read-write"}


def connect_args(url: str) -> dict:
    engine = make_engine(url)
    try:
        return engine.dialect.create_connect_args(engine.url)[1]
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://favad:pw@/favad?host=db1,db2&port=5433,5434&target_session_attrs=read-write",
    "postgresql+psycopg://favad:pw@/favad?host=db1:5433&host=db2:5434&target_session_attrs=read-write",
    "postgresql://favad:pw@/favad?host=db1:5433,db2:5434&target_session_attrs=read-write",  # not SQLAlchemy's
    "postgresql://favad:pw@db1:5433,db2:5434/favad?target_session_attrs=read-write",  # libpq's URI form
])
def test_every_libpq_spelling_of_two_hosts_reaches_the_driver_as_the_same_lists(url):
    args = connect_args(url)
    assert {k: args[k] for k in SAME} == SAME
    assert (args["user"], args["password"], args["dbname"]) == ("favad", "pw", "favad")
    assert dburl.hosts(url) == [("db1", 5433), ("db2", 5434)]
    assert dburl.advice(url) == []


def test_a_single_host_url_and_sqlite_are_left_exactly_as_written():
    for url in ("postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx",
                "postgresql+psycopg://u:p@db/favad", "sqlite:////var/lib/favad/favad.sqlite3"):
        assert dburl.normalise(url) == url
        assert Settings(database_url=url).db_url == url


def test_a_host_list_without_target_session_attrs_is_a_warning_on_load_and_in_doctor():
    settings = load(environ={"FAVAD_DATABASE_URL": "postgresql://favad@db1,db2/favad",
                             "FAVAD_CALLER_HASH_KEY": "k"})
    assert any("target_session_attrs=read-write" in w for w in settings.warnings)
    assert settings.db_url == "postgresql://favad@/favad?host=db1,db2"
    assert dburl.hosts(settings.db_url) == [("db1", None), ("db2", None)]
    quiet = load(environ={"FAVAD_DATABASE_URL": "postgresql://favad@db1,db2/favad?target_session_attrs=primary",
                          "FAVAD_CALLER_HASH_KEY": "k"})
    assert not any("target_session_attrs" in w for w in quiet.warnings)


@pytest.mark.parametrize("url, says", [
    ("postgresql://u@db1:5432,db2:99999/favad", "not a port number"),
    ("postgresql://u@db1,,db2/favad", "empty host"),
    ("postgresql://u@/favad?host=db1,db2,db3&port=1,2", "3 hosts but 2 ports"),
    ("postgresql://u@db1,db2/favad?host=db3", "names its hosts twice"),
])
def test_a_broken_host_list_is_refused_on_load_with_what_is_wrong(url, says):
    with pytest.raises(ConfigError, match=says):
        load(environ={"FAVAD_DATABASE_URL": url, "FAVAD_CALLER_HASH_KEY": "k"})


def test_the_password_is_masked_and_the_backup_tools_get_the_host_list():
    url = "postgresql://favad:s3cret@db1:5433,db2:5434/favad?target_session_attrs=read-write"
    shown = Settings(database_url=url).public()["database_url"]
    assert "s3cret" not in shown and "db1:5433,db2:5434" in shown
    assert "s3cret" not in mask_url(Settings(database_url=url).db_url)
    base, schemas = _pg(Settings(database_url=url + "&options=-csearch_path%3Dx").db_url)
    assert base == "postgresql://favad:s3cret@/favad?host=db1,db2&port=5433,5434&target_session_attrs=read-write"
    assert schemas == ["--schema=x"]
    assert make_url(base.replace("postgresql:", "postgresql+psycopg:")).query["host"] == "db1,db2"
