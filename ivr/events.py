"""What the call flow asks for (actions) and what it is told back (events)."""
from __future__ import annotations

from dataclasses import dataclass, field


# ---- actions: the flow -> a driver -------------------------------------------------------
@dataclass(frozen=True)
class Ask:
    """Play prompts (any key interrupts) and collect up to ``max_digits`` keys."""

    prompts: tuple[str, ...]
    max_digits: int
    timeout_ms: int
    step: str = ""  # the menu it belongs to; shown to operators as FAVAD_STEP


@dataclass(frozen=True)
class Play:
    """Play prompts; a key skips the rest, and is then dropped: it answers no question.

    ``interruptible=False`` plays them in full whatever the caller types (a notice that ends
    the call must be heard, not skipped by keys typed ahead)."""

    prompts: tuple[str, ...]
    interruptible: bool = True


@dataclass(frozen=True)
class SetLanguage:
    """Speak ``language`` from now on (Asterisk's CHANNEL(language): sounds/<language>/favad/)."""

    language: str


@dataclass(frozen=True)
class Record:
    path: str  # absolute, without extension
    fmt: str
    max_ms: int
    silence_s: int
    beep: bool


@dataclass(frozen=True)
class Discard:
    """Remove a recording the caller did not submit."""

    path: str


@dataclass(frozen=True)
class ComplaintDraft:
    province_code: str
    agency_code: str
    office_code: str | None
    indicator_code: str
    recording: str | None  # path with extension, as Asterisk wrote it


@dataclass(frozen=True)
class FileComplaint:
    """Begin storing the complaint: the driver answers ``Filing`` at once, without waiting for
    the write, so the flow can speak while it is made durable."""

    draft: ComplaintDraft


@dataclass(frozen=True)
class AwaitFiled:
    """Wait until the complaint begun with ``FileComplaint`` is stored or journaled (or failed):
    the driver answers ``Filed``. Nothing the caller hears may promise a code before it."""


@dataclass(frozen=True)
class LookupStatus:
    tracking_code: str


@dataclass(frozen=True)
class RateComplaint:
    """The caller's 1-5 rating of a resolved complaint (kept once per complaint)."""

    tracking_code: str
    rating: int


@dataclass(frozen=True)
class Finish:
    """End of the call: ``next`` is "hangup" or "operator" (hand back to the dialplan)."""

    outcome: str
    province_code: str | None
    next: str = "hangup"
    # the language the call ended in, for the monthly counts per language (set by the flow)
    language: str | None = field(default=None, compare=False)


Action = (Ask | Play | SetLanguage | Record | Discard | FileComplaint | AwaitFiled | LookupStatus
          | RateComplaint | Finish)


# ---- events: a driver -> the flow --------------------------------------------------------
@dataclass(frozen=True)
class Input:
    digits: str  # '' when the caller pressed nothing


@dataclass(frozen=True)
class Played:
    pass


@dataclass(frozen=True)
class Recorded:
    samples: int  # 0: nothing was recorded (silence, or no audio at all)


@dataclass(frozen=True)
class Filing:
    """The complaint's write is under way: nothing is promised yet."""


@dataclass(frozen=True)
class Filed:
    tracking_code: str | None  # None: storing failed, or refused
    refused: bool = False  # the caller is over their complaint limit: nothing was stored
    journaled: bool = False  # the database was away: kept in the journal, stored on replay


@dataclass(frozen=True)
class StatusFound:
    # None: no such complaint; "unavailable": the database is away; "limited": too many
    # tracking-code attempts from this caller today (nothing was looked up)
    status: str | None
    outcome: str | None = None
    rated: bool = False


@dataclass(frozen=True)
class Done:
    pass


Event = Input | Played | Recorded | Filing | Filed | StatusFound | Done
