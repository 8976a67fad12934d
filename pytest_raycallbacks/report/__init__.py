"""What a conformance run reports (docs/design.md §The certificate).

* :mod:`.results`: each item's outcome, gathered from pytest's reports, and a callback's
  verdict;
* :mod:`.summary`: the terminal summary, one block per callback;
* :mod:`.certificate`: the certificate, one JSON document per run, written atomically.

These modules lay out what the kit gives them; they run nothing.
"""
