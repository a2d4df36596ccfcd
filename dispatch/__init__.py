"""Forwarding complaints to inspection units: routing, the transactional outbox, the channels
that deliver it (email, SMS, local files) and the dispatcher loop that drives them."""
