"""A real PostgreSQL primary and a streaming standby on loopback, for failover tests and drills.

Built from the server binaries of /usr/lib/postgresql/<version>/bin, run as the ``postgres`` OS
user (PostgreSQL refuses root), data in a folder of its own under /tmp, each node on a free port
with its socket in its own folder: the machine's own cluster (5432) is never touched.

    with Cluster.create() as (primary, standby):
        primary.stop("immediate")      # a crash: no shutdown checkpoint, clients cut off
        standby.promote()              # the standby takes over as the new primary (alone: async)
        primary.rejoin(standby)        # the old primary rewound and started as a standby

``Cluster.url`` is the multi-host URL favad is configured with. The replication is synchronous
(``synchronous_standby_names = '*'``) as the README asks of a production pair: a commit the
primary acknowledged is on the standby too.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("FAVAD_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
DATABASE = "favad"
TIMEOUT = 60


def available() -> str | None:
    """Why a cluster cannot be made here (None if it can)."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN} (FAVAD_PG_BIN)"
    if os.geteuid() != 0:
        return "the test cluster runs as the postgres OS user: the tests must run as root"
    try:
        import pwd

        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no {OS_USER} OS user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str, timeout: float = TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    """A PostgreSQL program as the postgres OS user; its output in the exception if it fails."""
    done = subprocess.run(["runuser", "-u", OS_USER, "--", *args], capture_output=True, text=True,
                          timeout=timeout, cwd="/tmp")
    if check and done.returncode:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


@dataclass
class Node:
    name: str
    dir: Path  # this node's folder: data/, its socket, its log
    port: int

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def conninfo(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def url(self, **query: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return f"postgresql+psycopg://postgres@/{DATABASE}?host=127.0.0.1&port={self.port}{extra}"

    def start(self) -> None:
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "-o", f"-p {self.port} -k {self.dir}", "start")

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: the server processes quit at once, as in a crash."""
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def promote(self) -> None:
        """Take over as primary; alone, so its commits wait for no standby."""
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote")
        self.sql("ALTER SYSTEM SET synchronous_standby_names = ''", dbname="postgres")
        self.sql("SELECT pg_reload_conf()", dbname="postgres")

    def sql(self, statement: str, dbname: str = DATABASE) -> str:
        return _run(str(PG_BIN / "psql"), "-XAtq", "-d", self.conninfo(dbname), "-c", statement).stdout.strip()

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()") == "t"

    def follow(self, primary: "Node") -> None:
        """Make this (stopped) node a standby of ``primary``: the settings pg_basebackup -R writes."""
        conf = self.data / "postgresql.auto.conf"
        lines = [line for line in conf.read_text().splitlines() if not line.startswith("primary_conninfo")]
        lines.append(f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                     f"application_name={self.name}'")
        conf.write_text("\n".join(lines) + "\n")
        (self.data / "standby.signal").touch()
        _chown(self.dir)

    def rejoin(self, primary: "Node") -> None:
        """The crashed old primary back as a standby of the new one (pg_rewind first: it may
        hold WAL the new primary never received)."""
        # the new timeline reaches the control file pg_rewind reads only at a checkpoint
        primary.sql("CHECKPOINT", dbname="postgres")
        # a crashed target: pg_rewind (13+) runs its crash recovery first, in single-user mode
        _run(str(PG_BIN / "pg_rewind"), f"--target-pgdata={self.data}",
             f"--source-server={primary.conninfo('postgres')}")
        self.follow(primary)
        self.start()


def _chown(path: Path) -> None:
    shutil.chown(path, OS_USER, OS_USER)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), _uid(), _gid())


def _uid() -> int:
    import pwd

    return pwd.getpwnam(OS_USER).pw_uid


def _gid() -> int:
    import pwd

    return pwd.getpwnam(OS_USER).pw_gid


CONF = """
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
wal_log_hints = on
hot_standby = on
fsync = off
full_page_writes = on
synchronous_commit = on
wal_keep_size = '64MB'
max_connections = 60
shared_buffers = '16MB'
log_min_messages = warning
"""


class Cluster:
    """A primary and its streaming standby in a temporary folder; stopped and removed on exit."""

    def __init__(self, root: Path, primary: Node, standby: Node):
        self.root, self.primary, self.standby = root, primary, standby

    @classmethod
    @contextlib.contextmanager
    def create(cls):
        root = Path(tempfile.mkdtemp(prefix="favad-pgcluster-"))
        os.chmod(root, 0o755)
        primary = Node("a", root / "a", free_port())
        standby = Node("b", root / "b", free_port())
        cluster = cls(root, primary, standby)
        try:
            cluster._build()
            yield cluster
        finally:
            for node in (primary, standby):
                if node.data.exists():
                    node.stop("immediate")
            shutil.rmtree(root, ignore_errors=True)

    def _build(self) -> None:
        p, s = self.primary, self.standby
        p.dir.mkdir()
        _chown(p.dir)
        _run(str(PG_BIN / "initdb"), "-D", str(p.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync")
        with open(p.data / "postgresql.conf", "a") as f:
            f.write(CONF)
        p.start()
        p.sql(f"CREATE DATABASE {DATABASE}", dbname="postgres")
        s.dir.mkdir()
        _chown(s.dir)
        _run(str(PG_BIN / "pg_basebackup"), "-d", p.conninfo("postgres") + f" application_name={s.name}",
             "-D", str(s.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        s.start()
        self.wait(lambda: p.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                                dbname="postgres") == "1", "the standby to stream")
        p.sql("ALTER SYSTEM SET synchronous_standby_names = '*'", dbname="postgres")
        p.sql("SELECT pg_reload_conf()", dbname="postgres")

    def url(self, *nodes: Node, **query: str) -> str:
        """The multi-host URL over ``nodes`` (default: primary, standby), libpq's comma form."""
        nodes = nodes or (self.primary, self.standby)
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return (f"postgresql+psycopg://postgres@/{DATABASE}?host={','.join('127.0.0.1' for _ in nodes)}"
                f"&port={','.join(str(n.port) for n in nodes)}{extra}")

    @staticmethod
    def wait(condition, what: str, timeout: float = TIMEOUT) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if condition():
                    return
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout:g} s for {what}")
