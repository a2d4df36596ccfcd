"""Nobody identified: a complaint filed by a call whose AGI headers carry the caller's number,
name and Asterisk identifiers leaves the process, by every channel, without any of them."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import mailbox
import urllib.parse
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import CallerCount
from dispatch.loopback import SmsSink, SmtpSink
from dispatch.runner import Dispatcher
from dispatch.units import load_demo_units
from common.anonymity import caller_hash
from ivr.events import AwaitFiled, ComplaintDraft, FileComplaint, Finish
from presentation import fa_digits

NUMBER = "09121234567"
NAME = "Shahrzad Karimnejad"
UNIQUEID = "1795817207.25"
CHANNEL = "PJSIP/qazvin-trunk-0000002a"
HEADERS = {"agi_request": "agi://127.0.0.1/favad", "agi_channel": CHANNEL, "agi_language": "fa",
           "agi_type": "PJSIP", "agi_uniqueid": UNIQUEID, "agi_linkedid": UNIQUEID,
           "agi_callerid": NUMBER, "agi_calleridname": NAME, "agi_dnid": "128",
           "agi_rdnis": "unknown", "agi_context": "favad-inbound", "agi_extension": "128",
           "agi_priority": "4", "agi_arg_1": "28", "agi_accountcode": NUMBER}
SPELLINGS = [NUMBER, "9121234567", "+989121234567", "989121234567", "00989121234567",
             "0912 123 4567", "912-123-4567", "۰۹۱۲۱۲۳۴۵۶۷", "۹۱۲۱۲۳۴۵۶۷", "٠٩١٢١٢٣٤٥٦٧"]
WORDS = [NAME, "Karimnejad", UNIQUEID, CHANNEL, "qazvin-trunk", "uniqueid", "callerid", "agi_",
         "linkedid", "accountcode", "PJSIP"]


def _texts(blob: bytes) -> list[str]:
    """The blob as sent, and as a reader would see it: MIME parts decoded, forms unquoted."""
    raw = blob.decode("utf-8", "replace")
    out = [raw, urllib.parse.unquote_plus(raw)]
    if b"Message-ID" in blob:
        msg = email.message_from_bytes(blob, policy=email.policy.default)
        out += [str(v) for v in msg.values()]
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                out.append(part.get_content())
            elif not part.is_multipart():
                out.append(part.get_filename() or "")
    return out


def assert_anonymous(blobs: list[bytes], forbidden: list[str]) -> None:
    assert blobs
    for blob in blobs:
        for text in _texts(blob):
            squeezed = text.replace(" ", "").replace("-", "").lower()
            for word in forbidden:
                assert word.lower() not in text.lower(), f"{word!r} left the process"
                if any(ch.isdigit() for ch in word):
                    assert word.replace(" ", "").replace("-", "").lower() not in squeezed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the bytes do not depend on it
@pytest.mark.parametrize("channels", ["servers", "local files"])
def test_no_caller_identity_in_any_byte_sent(backend, tmp_path, channels):
    with backend.Session() as s:
        load_demo_units(s)
    recording = tmp_path / "rec" / "5f0c2a9e41d7b3a86c1e0f2d4b6a8c0e.wav"
    with wave.open(str(recording), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 8000)
    # the call, through the same backend the FastAGI driver uses
    _session, ctx = backend.open_call(dict(HEADERS))
    backend.perform(FileComplaint(ComplaintDraft("28", "112", None, "disrespect", str(recording))), ctx)
    filed = backend.perform(AwaitFiled(), ctx)
    backend.perform(FileComplaint(ComplaintDraft("28", "101", "280101", "employee_absent", None)), ctx)
    backend.perform(AwaitFiled(), ctx)
    backend.perform(Finish("complaint_filed", "28"), ctx)
    assert filed.tracking_code
    key_hash = caller_hash(NUMBER, backend.keyring.caller_key(ctx.period), ctx.period)
    assert backend.ledger.flush() == 1
    with backend.Session() as s:  # the hash exists, so its absence below means something
        assert s.scalar(select(CallerCount.caller_hash)) == key_hash
    # the caller's secret must not reach the office complained about either
    forbidden = SPELLINGS + WORDS + [key_hash, key_hash[:16], backend.settings.caller_hash_key,
                                     filed.tracking_code, fa_digits(filed.tracking_code)]

    settings = dataclasses.replace(backend.settings, escalate_after_hours=0.0)
    if channels == "servers":
        smtp, sms = SmtpSink().start(), SmsSink().start()
        try:
            settings = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                           smtp_security="none", sms_url=sms.url, sms_api_key="k")
            d = Dispatcher(settings, engine=backend.engine)
            d.drain()
            d._escalated_at = 0
            d.drain()  # the escalations too
            d.close()
            blobs = [m.raw for m in smtp.messages] + [r.raw for r in sms.requests]
        finally:
            smtp.stop()
            sms.stop()
        assert len(smtp.messages) == 3 and len(sms.requests) == 3  # 112: gov-28 only, flagged
    else:
        d = Dispatcher(settings, engine=backend.engine)
        d.drain()
        d.close()
        box = Path(settings.data_dir, "maildir")
        blobs = [bytes(m) for m in mailbox.Maildir(box, create=False)]
        blobs += [Path(settings.data_dir, "sms.log").read_bytes()]
        assert len(blobs) == 3
    assert any(b"audio/mpeg" in b or b"audio/wav" in b for b in blobs)
    assert_anonymous(blobs, forbidden)


def test_the_scan_catches_a_leak_in_any_spelling_or_encoding():
    from email.message import EmailMessage

    for leak in ["شماره ۰۹۱۲ ۱۲۳ ۴۵۶۷", "agi_uniqueid", "+98 912 123 4567"]:
        msg = EmailMessage()
        msg["Message-ID"] = "<x@y>"
        msg.set_content(f"متن {leak}", cte="base64")
        with pytest.raises(AssertionError):
            assert_anonymous([bytes(msg)], SPELLINGS + WORDS)
        with pytest.raises(AssertionError):
            assert_anonymous([b"message=" + urllib.parse.quote_plus(leak).encode()], SPELLINGS + WORDS)
