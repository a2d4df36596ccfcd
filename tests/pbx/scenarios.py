"""The callers of the first wave: placed together, so the suite pays for the longest call, not the sum.

Each entry: keys (groups split by spaces, ``-`` = silent for one turn) and `calls.place` options.
Timing is real: a group is typed every GAP seconds whatever is playing, and keys pressed during a
prompt answer the question being asked (README, "The call")."""
from __future__ import annotations

FILE_BY_OFFICE = "1 280101# 1 4 2 1"        # new, office, confirm, disrespect, no voice, submit
# '*' then a pause longer than GET DATA's 5 s: on a real Asterisk '*' does not end GET DATA, so
# the agency code typed right after it would join the same entry
FILE_BY_AGENCY = "1 * - 102# 1 7 2 1"       # ..., office unknown, agency 102, confirm, absent, ...
# '1' asks to record; the instruction and the beep take ~8.5 s; the caller speaks 12 s after the
# '1' (four silent turns; a sound file played into the call) then ends with '#', then submits.
# Waiting costs nothing: a caller who sends no audio at all is never cut by silence detection
# (Asterisk sees no frames to measure).
FILE_WITH_VOICE = "1 280101# 1 4 1 - - - - # 1"
VOICE_AT = 10  # the caller speaks before its 10th group

# the same, typed without waiting for the agency question (indicator 6, to tell it apart)
TYPED_ON = "1 * 102# 1 6 2 1"
TYPED_ON_INDICATOR = "work_postponed"

LOAD_CALLS = 50

# name -> (keys, options)
WAVE: dict[str, tuple[str, dict]] = {
    "office": (FILE_BY_OFFICE, {}),
    "agency": (FILE_BY_AGENCY, {}),
    "voice": (FILE_WITH_VOICE, {"play": "hello-world", "play_at": VOICE_AT}),
    "cdr": (FILE_BY_OFFICE, {"cid": "09127654321"}),
    # hang up one second into the question after these groups
    "hangup-main": ("-", {"pre": 1, "hold": 1}),
    "hangup-office": ("1", {"hold": 2}),
    "hangup-confirm": ("1 280101#", {"hold": 1}),
    "hangup-recording": ("1 280101# 1 4 1 - - -", {"play": "hello-world", "play_at": 8, "hold": 1}),
    "hangup-summary": ("1 280101# 1 4 2", {"hold": 1}),
    "silence": ("-", {"hold": 90}),
    "operator": ("0", {"hold": 20}),
    "invalid": ("7 7 7", {"hold": 60}),
    # classic AGI with no operator queue configured: the same failures end in the goodbye
    "plain-silence": ("-", {"hold": 90, "agi": "favad-agi-plain"}),
    "plain-invalid": ("7 7 7", {"hold": 60, "agi": "favad-agi-plain"}),
    "classic": (FILE_BY_OFFICE, {"context": "favad-classic"}),
    # '*' and the agency code 3 s apart: one GET DATA entry on a real Asterisk
    "agency-typed-on": (TYPED_ON, {}),
}
WAVE.update({f"load-{n:02d}": (FILE_BY_OFFICE, {"cid": f"0912{n:07d}"}) for n in range(LOAD_CALLS)})

FILED = ["office", "agency", "voice", "cdr", "classic"] + [f"load-{n:02d}" for n in range(LOAD_CALLS)]
