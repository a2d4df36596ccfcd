"""A short failover drill (scripts/drill with one phase): etcd and two PostgreSQL under Patroni,
two `favad serve` and two `favad dispatch` on the cluster's multi-host URL, callers calling; the
primary is killed with SIGKILL and brought back as a standby. Every code heard before, during
and after is stored exactly once, every message accepted once, the journals end empty. Runs
only where Patroni and etcd are installed (scripts/install --test installs them); about a minute."""
from __future__ import annotations


import pytest

from drill.cluster import missing_tools
from drill.run import Drill, parse

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason="needs Patroni, etcd and PostgreSQL 15 "
                                "(apt-get install patroni etcd-server)")


def test_killing_the_primary_under_calls_loses_no_heard_code_and_no_message():
    drill = Drill(parse(["--phases", "primary", "--callers", "3", "--down", "2", "--patience", "120"]))
    assert drill.run() == 0, drill.result and drill.result.broken
    rows = {r.phase: r for r in drill.result.rows}
    primary, every = rows["primary"], rows["all"]

    assert primary.heard > 0 and primary.stored_once == primary.heard  # heard during the failover
    assert every.failed == 0 and every.stored_once == every.heard == every.placed
    assert every.messages == 2 * every.heard == every.messages_once  # an email and an SMS each
    assert drill.result.unheard == 0 and drill.result.stored == every.heard
    assert not any(drill.result.journals.values())
    # the kill did stop writes (a primary was really lost), and they came back
    assert primary.writes_back > 0
    # the cluster and the fleet are gone with their temporary directories
    assert not drill.cluster.root.exists() and not drill.work.exists()
