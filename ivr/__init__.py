"""The call: a pure flow (flow.py) behind thin FastAGI and AGI drivers."""
