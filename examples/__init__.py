"""The source design's four example callbacks, as importable modules.

Each is kept as close to the source as it can be while runnable:

* :mod:`examples.logging_callback` — Example 1, a plain logging function;
* :mod:`examples.stateful_callback` — Example 2, a stateful class that changes downloads and
  injects ``extra_init_kwargs``;
* :mod:`examples.lambda_callback` — Example 3, a lambda keyed on a phase (its phase name
  ``"pre_init"`` is kept exactly as written: the runner never emits it, and the conformance
  kit says so);
* :mod:`examples.full_initialization` — Example 4, a callback that replaces the whole
  initialization with real Ray calls.
"""
