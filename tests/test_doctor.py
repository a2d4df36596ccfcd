"""`favad doctor` passes on a good setup and names each broken part, with its fix, when it is
made to fail in turn: against a real `favad serve` and the test AMI peer (pbxsim/ami.py)."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from config import Settings
from conftest import favad_env
from ivr.catalog import needed
from pbxsim.ami import STOCK_MODULES, AmiPeer, PeerThread
from prompts.build import build
from service import doctor
from test_dialplan import SECRET, own_sounds, rendered
from test_dispatch_processes import Proc
from test_serve import free_port

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def deployment(migrated, tmp_path):
    """A good deployment: the server up, the dialplan deployed, prompts built, AMI reachable."""
    peer = PeerThread(AmiPeer(secret=SECRET))
    ami_port = peer.__enter__()
    s = dataclasses.replace(migrated, listen_port=free_port(), ami_port=ami_port, ami_secret=SECRET,
                            sounds_dir=own_sounds(migrated, tmp_path), ami_timeout=2.0,
                            dialplan_file=str(tmp_path / "asterisk/favad-128.conf"))
    Path(s.dialplan_file).parent.mkdir()
    texts, ids = needed(s, lambda msg: None)
    build(texts, ids, s.sounds_dir, engine="tone")  # the IVR's prompts the session's set lacks
    Path(s.dialplan_file).write_text(rendered(s))
    server = Proc(["serve", "--no-dispatch"], favad_env(s, FAVAD_LISTEN_PORT=str(s.listen_port),
                                                       FAVAD_WEB_IN_SERVE="0"), ready="favad: FastAGI on")
    yield s, peer, server
    server.stop()
    peer.__exit__(None, None, None)


def failed(s) -> dict[str, doctor.Result]:
    return {r.name: r for r in doctor.run(s) if not r.ok}


@sqlite_only
def test_doctor_passes_on_a_good_setup_and_names_each_broken_part_in_turn(deployment, tmp_path):
    s, peer, server = deployment
    assert failed(s) == {}

    wrong = failed(dataclasses.replace(s, ami_secret="wrong"))
    assert set(wrong) == {"ami", "modules"} and "manager.conf" in wrong["ami"].fix

    peer.peer.modules = STOCK_MODULES - {"func_cdr"}
    bad = failed(s)
    assert set(bad) == {"modules"} and "func_cdr" in bad["modules"].found
    assert "module load func_cdr.so" in bad["modules"].fix
    peer.peer.modules = STOCK_MODULES

    Path(s.dialplan_file).write_text(Path(s.dialplan_file).read_text() + "; edited by hand\n")
    assert set(failed(s)) == {"dialplan"} and "dialplan deploy" in failed(s)["dialplan"].fix
    Path(s.dialplan_file).write_text(rendered(s))

    prompt = next(Path(s.sounds_dir, "fa", "favad").glob("*.wav"))
    prompt.rename(prompt.with_suffix(".gone"))
    assert set(failed(s)) == {"prompts"} and failed(s)["prompts"].fix == "favad prompts build"
    prompt.with_suffix(".gone").rename(prompt)

    os.chmod(s.keys_path, 0o755)
    assert failed(s)["keys"].fix == f"chmod 700 {s.keys_path}"
    os.chmod(s.keys_path, 0o700)

    assert set(failed(dataclasses.replace(s, recordings_dir=str(tmp_path / "none")))) == {"recordings"}
    empty = dataclasses.replace(s, database_url=f"sqlite:///{tmp_path}/empty.sqlite3")
    assert "favad db upgrade" in failed(empty)["database"].fix

    doctor.MIN_FREE_BYTES, saved = 10 ** 18, doctor.MIN_FREE_BYTES
    try:
        assert set(failed(s)) == {"disk"}
    finally:
        doctor.MIN_FREE_BYTES = saved

    server.stop()
    assert set(failed(s)) == {"fastagi"} and "systemctl start favad-serve" in failed(s)["fastagi"].fix


@sqlite_only
def test_doctor_json_for_monitoring_and_exit_code(deployment):
    s, peer, _ = deployment
    env = favad_env(s, FAVAD_LISTEN_PORT=str(s.listen_port), FAVAD_AMI_PORT=str(s.ami_port),
                    FAVAD_AMI_SECRET="wrong", FAVAD_AMI_TIMEOUT="2", FAVAD_SOUNDS_DIR=s.sounds_dir,
                    FAVAD_DIALPLAN_FILE=s.dialplan_file)
    done = CliRunner(mix_stderr=False).invoke(main, ["doctor", "--json"], env=env)
    assert done.exit_code == 1, done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)}
    assert [n for n, r in results.items() if not r["ok"]] == ["ami", "modules"]
    assert all(set(r) == {"name", "ok", "found", "fix"} for r in results.values())
    text = CliRunner(mix_stderr=False).invoke(main, ["doctor", "--only", "ami"], env=env)
    assert text.stdout.startswith("FAIL ami") and "fix: check manager.conf" in text.stdout


def greets(s, name: str) -> doctor.Result:
    (result,) = doctor.run(s, only=(name,))
    return result


def test_doctor_greets_the_mail_server_without_sending_and_names_each_way_it_fails(tmp_path):
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    from dispatch.loopback import SmtpSink

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", tmp_path / "key.pem", "-out", tmp_path / "cert.pem", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    def auth(server, session, envelope, mechanism, data):
        return AuthResult(success=(data.login, data.password) == (b"favad", b"s3cret"), handled=False)

    plain = SmtpSink().start()
    secure = SmtpSink(tls_context=tls, require_starttls=True, authenticator=auth, auth_required=True).start()
    base = Settings(data_dir=str(tmp_path / "data"), smtp_host="127.0.0.1", smtp_timeout=2)
    login = dataclasses.replace(base, smtp_port=secure.port, smtp_security="starttls", smtp_user="favad",
                                smtp_password="s3cret", smtp_ca_file=str(tmp_path / "cert.pem"))
    try:
        assert greets(dataclasses.replace(base, smtp_host=""), "smtp").ok  # the Maildir: nothing to reach
        assert greets(dataclasses.replace(base, smtp_port=plain.port, smtp_security="none"), "smtp").ok
        good = greets(login, "smtp")
        assert good.ok and "logged in as favad" in good.found

        bad = greets(dataclasses.replace(login, smtp_password="wrong"), "smtp")
        assert not bad.ok and bad.fix == "check smtp_user and smtp_password"
        bad = greets(dataclasses.replace(login, smtp_ca_file=""), "smtp")  # a certificate nobody vouches for
        assert not bad.ok and "TLS failed" in bad.found and "smtp_ca_file" in bad.fix
        bad = greets(dataclasses.replace(base, smtp_port=plain.port, smtp_security="starttls"), "smtp")
        assert not bad.ok and "no STARTTLS" in bad.found and 'smtp_security = "tls"' in bad.fix
        plain.stop()
        bad = greets(dataclasses.replace(base, smtp_port=plain.port, smtp_security="none"), "smtp")
        assert not bad.ok and "firewall" in bad.fix
    finally:
        plain.stop()
        secure.stop()
    assert plain.messages == secure.messages == []  # greeted, never sent to


def test_doctor_reaches_the_sms_provider_without_sending_and_names_each_way_it_fails(tmp_path):
    import socket

    from dispatch.loopback import SmsSink

    sink = SmsSink().start()
    base = Settings(data_dir=str(tmp_path / "data"), sms_url=sink.url, sms_api_key="k3y", sms_timeout=1)
    try:
        assert greets(dataclasses.replace(base, sms_url=""), "sms").ok  # the local file: nothing to reach
        good = greets(base, "sms")
        assert good.ok and "answers" in good.found and "k3y" not in good.found
        bad = greets(dataclasses.replace(base, sms_url=sink.url.replace("http:", "https:")), "sms")
        assert not bad.ok and "TLS failed" in bad.found and "https or http" in bad.fix
        bad = greets(dataclasses.replace(base, sms_url="http://sms.invalid"), "sms")
        assert not bad.ok and "does not resolve" in bad.found and "check sms_url" in bad.fix
        with socket.socket() as mute:  # listens, never answers: a provider behind a dropping firewall
            mute.bind(("127.0.0.1", 0))
            mute.listen()
            bad = greets(dataclasses.replace(base, sms_url=f"http://127.0.0.1:{mute.getsockname()[1]}"), "sms")
        assert not bad.ok and "no answer in time" in bad.found and "firewall" in bad.fix
    finally:
        sink.stop()
    bad = greets(base, "sms")
    assert not bad.ok and "firewall" in bad.fix
    assert sink.requests == []  # nothing sent
