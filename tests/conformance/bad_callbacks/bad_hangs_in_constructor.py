"""Breaks loading.no-arg-class: the class spec's constructor never returns.

It stands for a client that connects (with no timeout) in ``__init__``.
"""

import threading

BREAKS = "loading.no-arg-class"
SPEC = "bad_hangs_in_constructor.Callback"
OPTIONS = ("--raycallbacks-timeout", "1")


class Callback:
    def __init__(self):
        threading.Event().wait()  # stands for: self.client = connect() with no timeout

    def __call__(self, phase, config, data):
        return None
