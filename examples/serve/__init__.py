"""A Ray Serve LLM deployment with a ``CallbackBase`` callback, as Ray's user guide writes
one: ``serve.yaml`` (``serve deploy examples/serve/serve.yaml``) and its callback class."""
