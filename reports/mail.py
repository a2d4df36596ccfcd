"""Report cards into the outbox: each card kept once as a document, one message per recipient,
queued in one transaction (once per month, agency and recipient). The dispatcher sends them
like every other message (`dispatch/`): the same claim and lease, retries and dead letters."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch.models import Document, OutboxMessage as M
from reports.cards import Card

KIND = "report_card"


def key(period: str, agency_code: str) -> str:
    """The card's key, which also names its Message-IDs."""
    return f"card.{period}.{agency_code}"


def _document(s: Session, period: str, card: Card, now: dt.datetime) -> Document:
    """The card as a document: the one kept when it was first queued (recipients added later get
    the same card as the others), else this one."""
    doc = s.scalar(select(Document).where(Document.key == key(period, card.agency_code)))
    if doc is None:
        doc = Document(kind=KIND, key=key(period, card.agency_code), subject=card.subject, text=card.text,
                       html=card.html, pdf=card.pdf, filename=f"128-card-{card.agency_code}-{period}.pdf",
                       created_at=now)
        s.add(doc)
        s.flush()
    return doc


def queue_cards(s: Session, period: str, cards: list[Card], recipients: dict,
                now: dt.datetime) -> tuple[int, list[str]]:
    """Queue each card to its agency's recipients; (messages queued, agency codes with no
    recipient). A card queued before for the same month and recipient is not queued again.
    No commit."""
    queued, missing = 0, []
    for card in cards:
        to = recipients.get(card.agency_code, [])
        if not to:
            missing.append(card.agency_code)
            continue
        doc = _document(s, period, card, now)
        have = set(s.scalars(select(M.recipient).where(M.document_id == doc.id)))
        for _role, address in to:
            if address in have:
                continue
            have.add(address)
            s.add(M(document_id=doc.id, kind=KIND, channel="email", recipient=address, status="pending",
                    tries=0, created_at=now, next_attempt_at=now))
            queued += 1
    s.flush()
    return queued, missing


def counts(s: Session) -> dict[str, int]:
    """The report cards in the outbox, per status."""
    return dict(s.execute(select(M.status, func.count()).where(M.kind == KIND).group_by(M.status)).tuples().all())
