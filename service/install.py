"""`favad system install`: the plan of what a server needs (a user, folders with their modes,
a starter configuration, the units), then carrying it out. The plan is data, so `--dry-run`
prints exactly what would be done, and running it twice changes nothing the second time."""
from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from service.units import UNIT_DIR, Layout, enabled, render

STARTER_CONFIG = """\
# 128's configuration (README: "Install on a server"). Secrets live here: keep it 0640 root:{user}.
data_dir = "{data_dir}"
keys_dir = "{keys_dir}"
recordings_dir = "{recordings_dir}"
recordings_group = "{group}"
# database_url = "postgresql://favad:PASSWORD@127.0.0.1/favad"
# public_url = "https://128.example.ir"
# ami_secret = ""
metrics_port = 9128  # /healthz and /metrics on 127.0.0.1
log_format = "json"  # one JSON object per line, for journald
"""


@dataclass(frozen=True)
class Folder:
    path: str
    mode: int
    owner: str
    group: str

    def describe(self) -> str:
        return f"folder {self.path} {self.mode:04o} {self.owner}:{self.group}"


@dataclass(frozen=True)
class File:
    path: str
    text: str
    mode: int
    owner: str = "root"
    group: str = "root"
    keep: bool = False  # an admin's file: written only when it does not exist

    def describe(self) -> str:
        return f"file {self.path} {self.mode:04o} {self.owner}:{self.group}" + (
            " (only if absent)" if self.keep else "")


def plan(layout: Layout, unit_dir: Path = UNIT_DIR) -> list[Folder | File]:
    """Everything a server needs, in the order it is made."""
    u, g = layout.user, layout.asterisk_group
    config_dir = str(Path(layout.config).parent)
    steps: list[Folder | File] = [
        Folder(config_dir, 0o750, "root", u),
        File(layout.config, STARTER_CONFIG.format(user=u, group=g, data_dir=layout.data_dir,
                                                  keys_dir=layout.keys_dir,
                                                  recordings_dir=layout.recordings_dir),
             0o640, "root", u, keep=True),
        Folder(layout.data_dir, 0o700, u, u),
        Folder(layout.keys_dir, 0o700, u, u),  # never inside data_dir: backed up apart
        # Asterisk writes the recordings, favad reads and deletes them (config/files.py)
        Folder(layout.recordings_dir, 0o2770, u, g),
    ]
    steps += [File(str(unit_dir / name), text, 0o644) for name, text in render(layout).items()]
    return steps


def describe(layout: Layout, unit_dir: Path = UNIT_DIR) -> list[str]:
    """The plan as lines, the user and the systemctl calls included (for --dry-run)."""
    lines = [f"user {layout.user} (system, no login, member of {layout.asterisk_group})"]
    lines += [step.describe() for step in plan(layout, unit_dir)]
    lines += ["systemctl daemon-reload",
              f"systemctl enable {' '.join(enabled(render(layout)))}"]
    return lines


def ensure_user(user: str, group: str) -> list[str]:
    """The system user and its group, and membership of Asterisk's group; what was done."""
    done = []
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        done.append(f"created user {user}")
    if user not in grp.getgrnam(group).gr_mem:
        subprocess.run(["usermod", "--append", "--groups", group, user], check=True)
        done.append(f"added {user} to group {group}")
    return done


def apply(steps: list[Folder | File]) -> list[str]:
    """Make each folder and file as planned; what changed (nothing on a second run)."""
    done = []
    for step in steps:
        path = Path(step.path)
        if isinstance(step, Folder):
            if not path.is_dir():
                path.mkdir(parents=True)
                done.append(f"made {step.describe()}")
        elif not (step.keep and path.exists()):
            old = path.read_text(encoding="utf-8") if path.exists() else None
            if old != step.text:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(step.text, encoding="utf-8")
                os.replace(tmp, path)
                done.append(f"wrote {step.describe()}")
        uid, gid = pwd.getpwnam(step.owner).pw_uid, grp.getgrnam(step.group).gr_gid
        st = path.stat()
        if (st.st_uid, st.st_gid) != (uid, gid) or st.st_mode & 0o7777 != step.mode:
            os.chown(path, uid, gid)
            os.chmod(path, step.mode)
            done.append(f"set {step.describe()}")
    return done
