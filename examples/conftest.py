"""pytest settings for runs that collect ``examples/`` (the README's certification command).

``downstream_project/`` is a project of its own, with its own ``pytest.ini``: it is run from
its own folder (``cd examples/downstream_project && pytest``), not collected from here.
"""

collect_ignore = ["downstream_project"]
