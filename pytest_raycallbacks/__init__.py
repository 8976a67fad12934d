"""pytest-raycallbacks: certify Ray LLM initialization callbacks, and fixtures to test them.

The plugin itself lives in :mod:`pytest_raycallbacks.plugin` and is loaded by pytest through
the ``pytest11`` entry point.
"""

__version__ = "0.1.0"
