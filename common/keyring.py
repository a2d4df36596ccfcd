"""The keys that protect callers, kept apart from the data they protect.

Two kinds, both in ``keys_dir`` (mode 0700, outside ``data_dir`` by default, so no backup of
the database or of data_dir carries them):

- **Caller keys**, one per month (``caller-YYYY-MM.key``). A caller's number is hashed with
  the key of the month of the call; the key of a new month is derived from the previous one by
  a one-way step (a ratchet), and a month's key is deleted when the month and a grace have
  passed. Whoever seizes the server later holds this month's key and can compute the next
  ones, but never an earlier one: past months' caller counts can no longer be linked to any
  number. Servers that start from the same key (or the same seed) derive the same keys alone.
- **The tracking key** (``tracking.key``), which turns a caller's tracking code into the keyed
  hash the database stores, like a password. It is never rotated (codes stay valid for as long
  as their complaint is kept); lose it and no caller can follow up.

``caller_hash_key`` (FAVAD_CALLER_HASH_KEY), when set, seeds the first month's key so that
several servers agree without copying files; as long as it stays configured, every month's key
can be derived from it again, so remove it once the servers have their first key file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

_CALLER_FILE = re.compile(r"^caller-(\d{4})-(\d{2})\.key$")


def month_of(at: dt.datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def _next_month(period: str) -> str:
    y, m = map(int, period.split("-"))
    return f"{y + (m == 12):04d}-{m % 12 + 1:02d}"


def _month_end(period: str) -> dt.datetime:
    y, m = map(int, _next_month(period).split("-"))
    return dt.datetime(y, m, 1, tzinfo=dt.timezone.utc)


def ratchet(key: bytes, period: str) -> bytes:
    """The key of ``period`` from the key of the month before: one way only."""
    return hmac.new(key, f"favad-ratchet|{period}".encode(), hashlib.sha256).digest()


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _write_new(path: Path, data: bytes) -> bytes:
    """Write a key file once (0600); if another process won the race, theirs is the key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.hex().encode())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if the file exists: the first writer wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


class Keyring:
    def __init__(self, keys_dir: str | Path, seed: str = "", tracking_key: str = "",
                 grace_days: int = 2):
        self.dir = Path(keys_dir)
        self.seed = seed.encode()
        self._tracking_override = tracking_key.encode()
        self.grace = dt.timedelta(days=grace_days)
        self._cache: dict[str, bytes] = {}
        self._tracking: bytes | None = None

    # ---- caller keys --------------------------------------------------------------------
    def caller_key(self, period: str) -> bytes:
        """This month's caller key: read, ratcheted from last month's, seeded or drawn."""
        if (key := self._cache.get(period)) is not None:
            return key
        ensure_private_dir(self.dir)
        path = self.dir / f"caller-{period}.key"
        if path.exists():
            key = _read(path)
        else:
            earlier = sorted(p for p in self._periods() if p < period)
            if earlier:
                key, at = _read(self.dir / f"caller-{earlier[-1]}.key"), earlier[-1]
                while at < period:
                    at = _next_month(at)
                    key = ratchet(key, at)
            elif self.seed:
                key = hmac.new(self.seed, f"favad-seed|{period}".encode(), hashlib.sha256).digest()
            else:
                key = secrets.token_bytes(32)
            key = _write_new(path, key)
        self._cache = {period: key}  # one month at a time in memory
        return key

    def _periods(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return [f"{m[1]}-{m[2]}" for p in self.dir.iterdir() if (m := _CALLER_FILE.match(p.name))]

    def expired(self, now: dt.datetime) -> list[str]:
        """Months whose key is due to go: the month and the grace after it are over."""
        return sorted(p for p in self._periods() if _month_end(p) + self.grace <= now)

    def forget(self, period: str) -> None:
        """Destroy a month's caller key: its hashes can never be computed again."""
        path = self.dir / f"caller-{period}.key"
        if path.exists():
            self.caller_key(_next_month(period))  # made first: the ratchet goes on without this one
            path.unlink()
        self._cache.pop(period, None)

    # ---- the tracking key ---------------------------------------------------------------
    def tracking_key(self) -> bytes:
        if self._tracking_override:
            return self._tracking_override
        if self._tracking is None:
            ensure_private_dir(self.dir)
            path = self.dir / "tracking.key"
            self._tracking = _read(path) if path.exists() else _write_new(path, secrets.token_bytes(32))
        return self._tracking


def code_hash(key: bytes, code: str) -> str:
    """What the database keeps of a tracking code."""
    return hmac.new(key, f"favad-code|{code}".encode(), hashlib.sha256).hexdigest()
