"""State the test session's ``conftest.py`` sets up (a fresh interpreter does not)."""

READY = False
