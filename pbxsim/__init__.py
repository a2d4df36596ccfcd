"""pbxsim: Asterisk 22's side of AGI, byte for byte, for tests and the `favad call` CLI.

    from pbxsim import Caller, run_call, run_agi
    result = await run_call("127.0.0.1", 4573, "favad", ("28",), Caller("1 280101# -"),
                            sounds_dir="/var/lib/asterisk/sounds")

Ground truth: /work/shared/asterisk/TRANSCRIPTS.md (captures of a real Asterisk 22.10.1) and
res_agi.c.  channel.Channel is the sans-IO core; fastagi / classic are the two drivers.
"""
from .caller import Caller
from .channel import Channel
from .classic import run_agi
from .fastagi import run_call
from .media import Unsupported
from .session import CallResult, CallTimeout

__all__ = ["Caller", "Channel", "CallResult", "CallTimeout", "Unsupported", "run_agi", "run_call"]
