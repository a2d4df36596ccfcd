"""What a view needs from the app: a database session, the time, the settings.

    from web.staff import db as staff_db
    with staff_db.session() as s:
        ...
        s.commit()
"""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

from flask import current_app
from sqlalchemy.orm import Session

from config import Settings

KEY = "favad_staff"  # app.extensions[KEY]: the State below


class State:
    """One per app: its settings, engine, sessionmaker, clock and session policy."""

    def __init__(self, settings: Settings, engine, Session, clock, policy):
        self.settings, self.engine, self.Session, self.clock, self.policy = settings, engine, Session, clock, policy


def state() -> State:
    return current_app.extensions[KEY]


@contextlib.contextmanager
def session() -> Iterator[Session]:
    """A session on the app's engine, closed on leaving (commit inside when you write)."""
    with state().Session() as s:
        yield s


def now() -> dt.datetime:
    """The app's clock (UTC, aware): tests move it to expire sessions and lift locks."""
    return state().clock()


def settings() -> Settings:
    return state().settings
