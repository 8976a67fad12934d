"""What the conformance checks left unexercised in the callback's own code.

* :mod:`.measurer`: the ``raycallbacks-coverage`` plugin, which measures the callback's
  module with coverage.py around each conformance item that runs in this process and writes
  the executed arcs into the item's record;
* :mod:`.report`: the analysis of those arcs (the certificate's per-callback ``coverage``)
  and its block in the terminal summary.

Importing this package imports neither coverage.py nor its modules.
"""
