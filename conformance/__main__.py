"""``python -m conformance [--markdown]``: print the catalogue."""

from __future__ import annotations

import sys

from .catalogue import markdown_table, text_listing

if __name__ == "__main__":
    sys.stdout.write(markdown_table() if "--markdown" in sys.argv[1:] else text_listing())
