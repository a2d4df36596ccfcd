"""Tests against a real Asterisk 22 (marker pbx); see conftest.py."""
