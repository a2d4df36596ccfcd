"""Accountability: what inspection units did with a complaint, as append-only events, and the
clocks (office hours of a calendar) that every figure about speed is measured with."""
