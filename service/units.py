"""The systemd units that run 128 on a Debian server, as text: nothing here touches the disk.

One unit per long-running part (the FastAGI server, the dispatcher, the units' page), each
restartable alone, and a timer per job (report cards, retention, journal replay where only
classic AGI runs). Every unit runs as favad's user with the usual hardening: the file system
is read-only but for the folders it writes (``ProtectSystem=strict`` + ``ReadWritePaths``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")
HARDENING = """\
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
UMask=0077"""


@dataclass(frozen=True)
class Layout:
    """Where a server keeps 128's parts, and who runs it."""
    favad: str  # the `favad` executable inside the virtualenv
    config: str = "/etc/favad/favad.toml"
    data_dir: str = "/var/lib/favad"
    keys_dir: str = "/var/lib/favad-keys"
    recordings_dir: str = "/var/spool/asterisk/favad"
    writable: tuple[str, ...] = ()  # more folders the services write (sounds, dialplan, Maildir)
    user: str = "favad"
    asterisk_group: str = "asterisk"
    shutdown_grace: float = 30.0
    classic_agi_only: bool = False  # no `favad serve`: journal replay by the clock instead

    @property
    def read_write(self) -> str:
        return " ".join(dict.fromkeys((self.data_dir, self.keys_dir, self.recordings_dir,
                                       *self.writable)))


def _service(layout: Layout, description: str, command: str, *, oneshot: bool = False,
             env: tuple[str, ...] = (), stop_after: float = 0, after: str = "") -> str:
    lines = ["[Unit]", f"Description=128 {description}",
             f"After=network-online.target {after}".rstrip(), "Wants=network-online.target",
             "", "[Service]"]
    lines += ["Type=oneshot"] if oneshot else ["Type=exec", "Restart=on-failure", "RestartSec=2s"]
    lines += [f"User={layout.user}", f"Group={layout.user}",
              f"SupplementaryGroups={layout.asterisk_group}",  # the recordings folder is theirs
              f"Environment=FAVAD_CONFIG={layout.config}", *(f"Environment={e}" for e in env),
              f"ExecStart={layout.favad} {command}"]
    if stop_after:  # SIGTERM lets calls finish for shutdown_grace; then systemd may kill
        lines += ["KillSignal=SIGTERM", "KillMode=mixed", f"TimeoutStopSec={int(stop_after)}s"]
    lines += [HARDENING, f"ReadWritePaths={layout.read_write}"]
    if not oneshot:
        lines += ["", "[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


def _timer(description: str, when: str) -> str:
    return (f"[Unit]\nDescription=128 {description}\n\n[Timer]\nOnCalendar={when}\n"
            f"Persistent=true\nRandomizedDelaySec=60s\n\n[Install]\nWantedBy=timers.target\n")


def render(layout: Layout) -> dict[str, str]:
    """unit file name -> its text."""
    units: dict[str, str] = {}
    if not layout.classic_agi_only:
        # the dispatcher and the page run as units of their own, so each restarts alone
        units["favad-serve.service"] = _service(
            layout, "FastAGI server (the IVR)", "serve --no-dispatch",
            env=("FAVAD_DISPATCH_IN_SERVE=0", "FAVAD_WEB_IN_SERVE=0"),
            stop_after=layout.shutdown_grace + 15, after="postgresql.service")
    units["favad-dispatch.service"] = _service(
        layout, "dispatcher (complaints to the inspection units)", "dispatch",
        stop_after=60, after="postgresql.service")
    units["favad-web.service"] = _service(layout, "inspection units' page", "web serve",
                                          stop_after=30, after="postgresql.service")
    jobs = [("favad-report-cards", "monthly report cards", "report cards --send", "*-*-02 06:00"),
            ("favad-retention", "retention (what is kept no longer than needed)", "retention run",
             "*-*-* 03:30")]
    if layout.classic_agi_only:  # `favad serve` replays its journal itself
        jobs.append(("favad-journal-replay", "journal replay (complaints taken during a database "
                     "outage)", "journal replay", "minutely"))
    for name, description, command, when in jobs:
        units[f"{name}.service"] = _service(layout, description, command, oneshot=True,
                                            after="postgresql.service")
        units[f"{name}.timer"] = _timer(description, when)
    return units


def enabled(units: dict[str, str]) -> list[str]:
    """What `systemctl enable --now` starts: the services that run, and the timers."""
    return [n for n, text in units.items() if n.endswith(".timer") or "[Install]" in text]
