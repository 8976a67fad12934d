"""A team-wide registry of engine overrides, filled in by whoever configures the process."""

OVERRIDES: dict = {}
