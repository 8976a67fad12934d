"""pytest-raycallbacks: certify Ray LLM initialization callbacks, and fixtures to test them.

The plugin itself lives in :mod:`pytest_raycallbacks.plugin` and is loaded by pytest through
the ``pytest11`` entry point. The layout (docs/design.md §Layers):

* :mod:`.plugin` (entry point), :mod:`.options` (the ``--raycallbacks-*`` options);
* fixtures: :mod:`.fake_ray`, :mod:`.live`, :mod:`.runner_fixture`, :mod:`.strategies`;
* :mod:`.kit`: the conformance run (``--raycallbacks-conformance``), whose features are
  :mod:`.report` (results, summary, certificate), :mod:`.coverage` (the callback's code
  coverage) and :mod:`.chain` (``--raycallbacks-chain``);
* :mod:`.verify` and :mod:`.cli`: the ``raycallbacks verify`` deploy gate.

Importing this package imports none of them.
"""

__version__ = "0.1.0"
