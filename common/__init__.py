"""The shared pure pieces every part may import, and which import no part of 128: caller
identity hygiene, log redaction, tracking codes and case numbers, the keys that protect
callers, and the signing of the units' links (see tests/test_layers.py for the direction)."""
