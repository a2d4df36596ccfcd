"""`favad serve` makes room for its calls' sockets: the soft limit on open files (1,024 under
most shells and systemd) would refuse calls long before max_connections."""
from __future__ import annotations

import resource

from ivr.fastagi import FILES_BESIDE_CALLS, raise_file_limit


def test_the_soft_file_limit_is_raised_for_the_calls():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        raise_file_limit(5000)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(hard, 5000 + FILES_BESIDE_CALLS)
        raise_file_limit(100)  # never lowered
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(hard, 5000 + FILES_BESIDE_CALLS)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
