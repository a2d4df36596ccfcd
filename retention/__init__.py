"""Retention: what 128 keeps about a complaint is deleted once it is no longer needed.

Four kinds go when due (``retention.sweep``): the recordings of resolved complaints, the caller
counts of a month together with that month's caller key, the journal's leftover temporary
files, and the bodies of report cards that could not be delivered. The complaint outbox
(``outbox_messages``) holds no text, so it has nothing to delete. Run by ``favad retention run``
(with ``--dry-run`` to see what would go) and hourly by ``favad serve``'s housekeeping.
"""
