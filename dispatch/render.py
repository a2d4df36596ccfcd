"""From a complaint to the words that leave the process: email and SMS, Persian, right to left.

Templates see a ``Notice`` and nothing else, and a Notice has no field that could hold who
called; so no template edit can leak the caller, whatever it adds.
"""
from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass, replace
from email import encoders
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate
from pathlib import Path

import jinja2

from dispatch import audio
from presentation import fa_digits, jalali

TEMPLATES = Path(__file__).with_name("templates")
CATALOG = tomllib.loads((TEMPLATES / "catalog.fa.toml").read_text(encoding="utf-8"))
WIRE = email.policy.compat32.clone(linesep="\r\n")  # SMTP's line ends, whatever the OS
SMS_LIMIT = 134  # two concatenated UCS-2 parts of 67 characters each


@dataclass(frozen=True)
class Notice:
    """The placeholders every template may use."""

    kind: str  # complaint | escalation
    case_number: str
    filed_at: dt.datetime
    sla_due_at: dt.datetime
    indicator_code: str
    indicator_fa: str
    agency_fa: str
    province_fa: str
    unit_fa: str  # the unit this message goes to
    first_unit_fa: str  # the unit the complaint went to first (named in an escalation)
    office_code: str | None = None
    office_fa: str | None = None
    city_fa: str | None = None
    flag: str | None = None
    recording: str = "none"  # attached | link | kept (too large, no link base, or elsewhere) | none
    recording_url: str | None = None
    action_url: str | None = None  # the unit's signed link to its page (common.links)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html"]), keep_trailing_newline=False)
    env.filters["fa"] = fa_digits
    env.filters["jalali"] = lambda value: jalali(value, persian_digits=True)
    return env


ENV = _env()


def ucs2_len(text: str) -> int:
    """Length in UCS-2 code units, as an SMS counts it (a character beyond the BMP takes two)."""
    return len(text.encode("utf-16-le")) // 2


def sms_text(n: Notice) -> str:
    """The SMS: code, indicator, place, deadline; names shortened until it fits two parts."""
    template = ENV.get_template("sms.txt")
    place = n.office_fa or n.agency_fa

    def render(indicator, place):
        return template.render(**asdict(n), indicator=indicator, place=place).strip()

    for indicator in (n.indicator_fa, CATALOG["indicator_short"].get(n.indicator_code, n.indicator_fa)):
        if ucs2_len(render(indicator, place)) <= SMS_LIMIT:
            return render(indicator, place)
    room = SMS_LIMIT - ucs2_len(render(indicator, ""))
    text = render(indicator, place[:max(room - 1, 0)].rstrip() + "…")
    return text if ucs2_len(text) <= SMS_LIMIT else text[:SMS_LIMIT]


def message_id(n: Notice, recipient: str, domain: str) -> str:
    """Stable per complaint, kind and recipient: a retried message is recognisably the same."""
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<{n.case_number}.{n.kind}.{who}@{domain}>"


def email_message(n: Notice, recipient: str, mail_from: str, recording: audio.Audio | None) -> bytes:
    """The email as it goes on the wire: RTL HTML and plain text, the recording attached.

    Built with the compat32 MIME classes: the modern ``EmailMessage`` API folds Persian headers
    ten times slower, and a dispatcher spends its time here."""
    ctx = asdict(n)
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(ENV.get_template("email.txt").render(**ctx).strip() + "\n", "plain", "utf-8"))
    body.attach(MIMEText(ENV.get_template("email.html").render(**ctx), "html", "utf-8"))
    msg = body
    if recording is not None:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        part = MIMEBase("audio", recording.subtype)
        part.set_payload(recording.data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment",
                        filename=f"128-{n.case_number}.{recording.extension}")
        msg.attach(part)
    subject = re.sub(r"\s+", " ", ENV.get_template("subject.txt").render(**ctx)).strip()
    msg["Subject"] = Header(subject, "utf-8")
    msg["From"] = formataddr((CATALOG["from_name"], mail_from), charset="utf-8")
    msg["To"] = recipient
    msg["Date"] = formatdate(usegmt=True)  # UTC: the server's own time zone is nobody's business
    msg["Message-ID"] = message_id(n, recipient, mail_from.rpartition("@")[2] or "favad.localhost")
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies back to 128
    msg["X-Favad-Case-Number"] = n.case_number
    return msg.as_bytes(policy=WIRE)


def with_recording(n: Notice, path: str | None, max_bytes: int, url_base: str
                   ) -> tuple[Notice, audio.Audio | None]:
    """Attach the recording if it is small enough, else link it (or say where it is kept)."""
    if not path:
        return n, None
    rec = audio.for_mail(path)
    if rec is not None and len(rec.data) <= max_bytes:
        return replace(n, recording="attached"), rec
    if rec is not None and url_base:
        # recordings are named with 128 random bits by the call flow: the link guesses nothing
        return replace(n, recording="link", recording_url=f"{url_base.rstrip('/')}/{Path(path).name}"), None
    return replace(n, recording="kept"), None


# ---- documents (report cards) -------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    """A finished document to mail as it is: aggregates only (a report card)."""

    key: str  # card.1404-07.101
    subject: str
    text: str
    html: str
    pdf: bytes
    filename: str


def document_message(d: Document, recipient: str, mail_from: str) -> bytes:
    """A document as it goes on the wire: its page as HTML, a plain summary, the PDF attached."""
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(d.text, "plain", "utf-8"))
    body.attach(MIMEText(d.html, "html", "utf-8"))
    msg = MIMEMultipart("mixed")
    msg.attach(body)
    pdf = MIMEApplication(d.pdf, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=d.filename)
    msg.attach(pdf)
    msg["Subject"] = Header(d.subject, "utf-8")
    msg["From"] = formataddr((CATALOG["from_name"], mail_from), charset="utf-8")
    msg["To"] = recipient
    msg["Date"] = formatdate(usegmt=True)
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    msg["Message-ID"] = f"<{d.key}.{who}@{mail_from.rpartition('@')[2] or 'favad.localhost'}>"
    msg["Auto-Submitted"] = "auto-generated"
    return msg.as_bytes(policy=WIRE)
