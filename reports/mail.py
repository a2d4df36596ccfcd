"""Report cards through an outbox: queued in one transaction (once per month, agency and
recipient), then sent through the dispatcher's email channel with its retry rules: a temporary
failure waits (doubling, with jitter), a permanent one or the last try makes a dead letter."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import Settings
from db.models import Agency
from dispatch import channels as channel_registry
from dispatch.channels.base import PERMANENT, SENT, Mail
from dispatch.outbox import backoff
from reports.cards import Card, email
from reports.models import ReportMessage as M

KIND = "report_card"


def queue_cards(s: Session, period: str, cards: list[Card], recipients: dict, mail_from: str,
                now: dt.datetime) -> tuple[int, list[str]]:
    """Queue each card to its agency's recipients; (messages queued, agency codes with no
    recipient). A card queued before for the same month and recipient is not queued again.
    No commit."""
    agency_ids = dict(s.execute(select(Agency.code, Agency.id)).tuples().all())
    have = set(s.execute(select(M.agency_id, M.recipient).where(M.kind == KIND, M.period == period)).tuples())
    queued, missing = 0, []
    for card in cards:
        to = recipients.get(card.agency_code, [])
        if not to:
            missing.append(card.agency_code)
        for role, address in to:
            if (agency_ids[card.agency_code], address) in have:
                continue
            s.add(M(kind=KIND, period=period, agency_id=agency_ids[card.agency_code], role=role,
                    recipient=address, message=email(card, period, address, mail_from), status="pending",
                    tries=0, created_at=now, next_attempt_at=now))
            queued += 1
    s.flush()
    return queued, missing


def deliver(s: Session, settings: Settings, now: dt.datetime, channel=None, limit: int = 200) -> tuple[int, int]:
    """Send the cards that are due; (sent, failed tries). Rows are locked while being sent
    (SKIP LOCKED), so two senders never send the same card. Commits after each."""
    channel = channel or channel_registry.make(settings)["email"]
    sent = failed = 0
    try:
        ids = s.scalars(select(M.id).where(M.status == "pending", M.next_attempt_at <= now)
                        .order_by(M.id).limit(limit)).all()
        for mid in ids:
            m = s.scalar(select(M).where(M.id == mid, M.status == "pending").with_for_update(skip_locked=True))
            if m is None:  # another sender has it
                s.rollback()
                continue
            result = channel.send(Mail(settings.mail_from, m.recipient, m.message))
            m.tries += 1
            if result.outcome == SENT:
                m.status, m.sent_at, m.last_error = "sent", now, None
                sent += 1
            else:
                dead = result.outcome == PERMANENT or m.tries >= settings.dispatch_max_tries
                m.status = "dead" if dead else "pending"
                m.next_attempt_at = now + dt.timedelta(seconds=0 if dead else backoff(
                    m.tries, settings.dispatch_backoff_base, settings.dispatch_backoff_max))
                m.last_error = result.detail[:500]
                failed += 1
            s.commit()
    finally:
        channel.close()
    return sent, failed


def counts(s: Session) -> dict[str, int]:
    return dict(s.execute(select(M.status, func.count()).group_by(M.status)).tuples().all())
