"""`favad system install`: the units it writes pass `systemd-analyze verify` (whose warnings
exit 0, so its output must be empty too), `--dry-run` lists every file, and installing twice
changes nothing the second time."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from service import install
from service.units import Layout, enabled, render

FAVAD = str(Path(sys.executable).with_name("favad"))


def verify(folder: Path) -> subprocess.CompletedProcess:
    names = sorted(p.name for p in folder.iterdir())
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=folder,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _systemd():
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: run scripts/install --test")


@pytest.mark.parametrize("classic", [False, True], ids=["fastagi", "classic-agi-only"])
def test_the_units_pass_systemd_analyze_verify_with_nothing_to_say(tmp_path, classic):
    for name, text in render(Layout(favad=FAVAD, classic_agi_only=classic)).items():
        (tmp_path / name).write_text(text)
    done = verify(tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_verify_would_catch_a_wrong_setting(tmp_path):
    """The check above means something: a misspelt hardening option is reported."""
    text = render(Layout(favad=FAVAD))["favad-serve.service"].replace("ProtectSystem=strict",
                                                                      "ProtectSystem=strikt")
    (tmp_path / "favad-serve.service").write_text(text)
    assert "strikt" in verify(tmp_path).stderr


def test_each_part_runs_alone_hardened_and_writes_only_its_folders():
    units = render(Layout(favad=FAVAD, recordings_dir="/srv/rec", writable=("/var/lib/asterisk/sounds",)))
    assert enabled(units) == ["favad-serve.service", "favad-dispatch.service", "favad-web.service",
                              "favad-report-cards.timer", "favad-retention.timer"]
    serve = units["favad-serve.service"]
    assert f"ExecStart={FAVAD} serve --no-dispatch" in serve
    assert "FAVAD_WEB_IN_SERVE=0" in serve and "FAVAD_DISPATCH_IN_SERVE=0" in serve
    assert "TimeoutStopSec=45s" in serve  # shutdown_grace (30 s) for the calls, then more
    for name, text in units.items():
        if name.endswith(".service"):
            assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
            assert "ReadWritePaths=/var/lib/favad /var/lib/favad-keys /srv/rec /var/lib/asterisk/sounds" in text
            assert "User=favad" in text and "SupplementaryGroups=asterisk" in text
    classic = render(Layout(favad=FAVAD, classic_agi_only=True))
    assert "favad-serve.service" not in classic
    assert "OnCalendar=minutely" in classic["favad-journal-replay.timer"]


def test_dry_run_lists_every_file_and_changes_nothing(tmp_path):
    done = CliRunner(mix_stderr=False).invoke(main, [
        "system", "install", "--dry-run", "--asterisk-group", "asterisk",
        "--config", str(tmp_path / "etc/favad.toml"), "--unit-dir", str(tmp_path / "units")])
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "user favad (system, no login, member of asterisk)"
    assert f"file {tmp_path}/etc/favad.toml 0640 root:favad (only if absent)" in lines
    assert "folder /var/lib/favad-keys 0700 favad:favad" in lines
    assert "folder /var/spool/asterisk/favad 2770 favad:asterisk" in lines
    for name in render(Layout(favad=FAVAD)):
        assert f"file {tmp_path}/units/{name} 0644 root:root" in lines
    assert lines[-1].startswith("systemctl enable favad-serve.service")
    assert not tmp_path.joinpath("etc").exists() and not tmp_path.joinpath("units").exists()


def test_installing_twice_changes_nothing_and_keeps_the_admins_configuration(tmp_path):
    me = __import__("pwd").getpwuid(os.getuid()).pw_name
    group = __import__("grp").getgrgid(os.getgid()).gr_name
    layout = Layout(favad=FAVAD, config=str(tmp_path / "etc/favad.toml"), data_dir=str(tmp_path / "var"),
                    keys_dir=str(tmp_path / "keys"), recordings_dir=str(tmp_path / "rec"), user=me,
                    asterisk_group=group)
    steps = [s if not isinstance(s, install.File) else
             install.File(s.path, s.text, s.mode, me, group, s.keep)
             for s in install.plan(layout, tmp_path / "units")]
    steps = [install.Folder(s.path, s.mode, me, group) if isinstance(s, install.Folder) else s for s in steps]
    (tmp_path / "etc").mkdir()
    first = install.apply(steps)
    assert any("favad-serve.service" in line for line in first)
    assert (tmp_path / "keys").stat().st_mode & 0o7777 == 0o700
    assert (tmp_path / "rec").stat().st_mode & 0o7777 == 0o2770
    assert (tmp_path / "etc/favad.toml").stat().st_mode & 0o7777 == 0o640
    (tmp_path / "etc/favad.toml").write_text('log_level = "DEBUG"\n')
    os.chmod(tmp_path / "etc/favad.toml", 0o640)
    assert install.apply(steps) == []
    assert (tmp_path / "etc/favad.toml").read_text() == 'log_level = "DEBUG"\n'
    os.chmod(tmp_path / "keys", 0o755)  # put right on the next run
    assert install.apply(steps) == [f"set folder {tmp_path}/keys 0700 {me}:{group}"]
