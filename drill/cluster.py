"""A PostgreSQL cluster under Patroni with one etcd, on loopback, in a temporary directory.

Two nodes (`pg0`, `pg1`), each a Patroni process that runs its own PostgreSQL 15 on a port of
its own. etcd holds the leader key; the node that holds it is the primary, the other streams
from it. Killing a node kills its Patroni and its PostgreSQL together (the machine is gone);
once the leader key's TTL runs out the standby promotes itself. Bringing a node back starts its
Patroni on the same data directory: it rewinds (pg_rewind) and follows the new primary.

PostgreSQL refuses to run as root, so when we are root every process of the cluster runs as
the `postgres` user, in a directory it owns. Nothing here touches the machine's own PostgreSQL.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dispatch.loopback import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCOPE = "favad-drill"
DATABASE = "favad"
# Loopback timings: the leader key lives TTL seconds without a renewal. Patroni's rule
# loop_wait + 2 * retry_timeout <= ttl holds. Production keeps Patroni's defaults (30/10/10).
TTL, LOOP_WAIT, RETRY_TIMEOUT = 6, 1, 2


class ClusterError(Exception):
    """The cluster could not be started or did not settle in time."""


def missing_tools() -> list[str]:
    """The Debian packages the cluster needs and this machine lacks."""
    need = []
    if not shutil.which("patroni"):
        need.append("patroni")
    if not shutil.which("etcd"):
        need.append("etcd-server")
    if not (PG_BIN / "postgres").exists():
        need.append("postgresql-15")
    return need


@dataclass
class Node:
    name: str
    port: int
    api_port: int
    data_dir: Path
    config: Path
    proc: subprocess.Popen | None = None
    log: Path | None = None


@dataclass
class Cluster:
    root: Path
    synchronous: bool = True
    etcd_port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    etcd: subprocess.Popen | None = None

    @classmethod
    def create(cls, synchronous: bool = True) -> "Cluster":
        root = Path(tempfile.mkdtemp(prefix="favad-drill-"))
        c = cls(root, synchronous)
        for i in range(2):
            port, api = free_port(), free_port()
            c.nodes.append(Node(f"pg{i}", port, api, root / f"pg{i}", root / f"pg{i}.yml"))
        _chown(root)
        return c

    # -- what the clients see --------------------------------------------------------------

    def url(self, driver: str = "postgresql+psycopg") -> str:
        """The multi-host URL every favad process gets: libpq tries the hosts in turn and keeps
        the one that takes writes."""
        ports = ",".join(str(n.port) for n in self.nodes)
        hosts = ",".join("127.0.0.1" for _ in self.nodes)
        return (f"{driver}://postgres@/{DATABASE}?host={hosts}&port={ports}"
                f"&target_session_attrs=read-write")

    def conninfo(self, node: Node, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={node.port} user=postgres dbname={dbname} connect_timeout=2"

    def writable(self) -> bool:
        """A write succeeds through the multi-host URL (a transaction id is only given out by a
        primary)."""
        ports = ",".join(str(n.port) for n in self.nodes)
        try:
            with psycopg.connect(f"host={','.join('127.0.0.1' for _ in self.nodes)} port={ports} "
                                 f"user=postgres dbname={DATABASE} connect_timeout=2 "
                                 "target_session_attrs=read-write", autocommit=True) as conn:
                conn.execute("SELECT txid_current()")
            return True
        except psycopg.Error:
            return False

    def members(self) -> dict[str, dict]:
        """Patroni's view: name -> {role, state, lag, ...}, from any node's REST API that answers."""
        for node in self.nodes:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{node.api_port}/cluster", timeout=2) as r:
                    return {m["name"]: m for m in json.load(r)["members"]}
            except OSError:
                continue
        return {}

    def leader(self) -> Node | None:
        for name, m in self.members().items():
            if m.get("role") == "leader" and m.get("state") == "running":
                return next(n for n in self.nodes if n.name == name)
        return None

    def streaming(self) -> bool:
        """A primary that takes writes, every other node streaming from it, and with
        synchronous replication one of them its synchronous standby."""
        leader = self.leader()
        if leader is None:
            return False
        try:
            with psycopg.connect(self.conninfo(leader, "postgres"), autocommit=True) as conn:
                rows = conn.execute("SELECT application_name, sync_state FROM pg_stat_replication "
                                    "WHERE state = 'streaming'").fetchall()
        except psycopg.Error:
            return False
        others = {n.name for n in self.nodes if n is not leader}
        synced = not self.synchronous or any(state == "sync" for _, state in rows)
        return others <= {name for name, _ in rows} and synced

    # -- starting and stopping -------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """etcd, then both nodes; returns once the primary takes writes and the standby streams."""
        self._start_etcd()
        self._write_configs()
        self.start_node(self.nodes[0])
        _until(lambda: self.leader() is not None, timeout, "the first primary")
        self._create_database()
        self.start_node(self.nodes[1])
        _until(self.streaming, timeout, "the standby to stream")

    def start_node(self, node: Node) -> None:
        node.log = self.root / f"{node.name}.log"
        with open(node.log, "ab") as out:
            node.proc = subprocess.Popen(["patroni", str(node.config)], stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.root, start_new_session=True, **_as_postgres())

    def kill_node(self, node: Node) -> None:
        """SIGKILL to the node's Patroni and to its PostgreSQL with every backend: the machine
        is gone, nothing is shut down cleanly, no leader key is handed over."""
        if node.proc is not None and node.proc.poll() is None:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()
        pid = _postmaster_pid(node.data_dir)
        if pid:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)  # Patroni starts it in a session of its own
            except ProcessLookupError:
                pass
            _until(lambda: not _alive(pid), 30, f"{node.name}'s PostgreSQL to die")

    def switchover(self) -> tuple[str, str]:
        """A planned switch (a host to be replaced): Patroni demotes the primary, which stays up
        as a standby, and promotes the other. (old, new) primary names."""
        old = self.leader()
        new = next(n for n in self.nodes if n is not old)
        body = json.dumps({"leader": old.name, "candidate": new.name}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{old.api_port}/switchover", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        return old.name, new.name

    def stop(self) -> None:
        """Everything down and the temporary directory gone."""
        for node in self.nodes:
            self.kill_node(node)
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.kill()
            self.etcd.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.root.glob("*.log")))

    # -- the pieces --------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        peer = free_port()
        args = ["etcd", "--name", "drill", "--data-dir", str(self.root / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"drill=http://127.0.0.1:{peer}",
                "--enable-v2=false", "--log-level", "warn"]
        with open(self.root / "etcd.log", "ab") as out:
            self.etcd = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.root,
                                         start_new_session=True, **_as_postgres())

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=1) as r:
                    return json.load(r).get("health") == "true"
            except OSError:
                return False
        _until(up, 30, "etcd")

    def _write_configs(self) -> None:
        for node in self.nodes:
            node.config.write_text(json.dumps(self._config(node), indent=1))  # YAML reads JSON
            _chown(node.config)

    def _config(self, node: Node) -> dict:
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust",
                 "host replication all 127.0.0.1/32 trust"]  # loopback only, a throwaway cluster
        return {
            "scope": SCOPE, "name": node.name,
            "log": {"level": "WARNING"},
            "restapi": {"listen": f"127.0.0.1:{node.api_port}", "connect_address": f"127.0.0.1:{node.api_port}"},
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_port}"]},
            "bootstrap": {
                "dcs": {"ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                        "maximum_lag_on_failover": 16 * 1024 * 1024,
                        # a commit waits for the standby's flush; only a synchronous standby is promoted
                        "synchronous_mode": self.synchronous,
                        "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                       "parameters": {"wal_log_hints": "on", "max_connections": 100,
                                                      "wal_keep_size": "128MB"}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
                "pg_hba": trust,
            },
            "postgresql": {
                "basebackup": [{"checkpoint": "fast"}],  # a new standby copies at once
                "listen": f"127.0.0.1:{node.port}", "connect_address": f"127.0.0.1:{node.port}",
                "data_dir": str(node.data_dir), "bin_dir": str(PG_BIN),
                "pgpass": str(self.root / f"{node.name}.pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "drill"},
                                   "replication": {"username": "postgres", "password": "drill"},
                                   "rewind": {"username": "postgres", "password": "drill"}},
                "parameters": {"unix_socket_directories": str(self.root), "fsync": "on"},
                "pg_hba": trust,
            },
        }

    def _create_database(self) -> None:
        leader = self.leader()

        def create() -> bool:
            try:
                with psycopg.connect(self.conninfo(leader, "postgres"), autocommit=True) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return True
            except psycopg.Error:
                return False
        _until(create, 30, "the database")


def _as_postgres() -> dict:
    """Popen's arguments to run as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": str(tempfile.gettempdir()), "USER": "postgres"}}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (its parent, Patroni, is dead too, and init reaps it soon) counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _until(done, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise ClusterError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)
