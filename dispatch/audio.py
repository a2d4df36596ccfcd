"""The voice description as a mail attachment: Asterisk's WAV converted with pydub to MP3, which
every mail client plays; the WAV itself when ffmpeg is missing or the conversion fails."""
from __future__ import annotations

import functools
import io
import logging
import os
import shutil
from dataclasses import dataclass

log = logging.getLogger(__name__)
BITRATE = "32k"  # speech: small enough to mail, clear enough to hear


@dataclass(frozen=True)
class Audio:
    data: bytes
    subtype: str  # audio/<subtype>
    extension: str


def for_mail(path: str) -> Audio | None:
    """The recording at ``path`` ready to attach, or None if it is not on this machine."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _convert(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)  # one complaint goes to several recipients: convert it once
def _convert(path: str, _mtime_ns: int, _size: int) -> Audio | None:
    if shutil.which("ffmpeg"):
        try:
            from pydub import AudioSegment

            out = io.BytesIO()
            AudioSegment.from_file(path).export(out, format="mp3", bitrate=BITRATE)
            return Audio(out.getvalue(), "mpeg", "mp3")
        except Exception as e:  # a damaged file still goes along as it is
            log.warning("converting a recording to MP3 failed (%s); attaching the WAV", type(e).__name__)
    try:
        with open(path, "rb") as f:
            return Audio(f.read(), "wav", "wav")
    except OSError:
        return None
