"""The Asterisk Manager Interface, as 128 uses it: a panoramisk 1.4 client that survives what
panoramisk does not (see ``client.py``), and never keeps a caller's identity (``scrub.py``).

    async with AmiClient.from_settings(settings) as ami:
        channels = await ami.list_action({"Action": "CoreShowChannels"})
"""
from ami.client import AmiClient, AmiError, AmiTimeout, AmiUnavailable

__all__ = ["AmiClient", "AmiError", "AmiTimeout", "AmiUnavailable"]
