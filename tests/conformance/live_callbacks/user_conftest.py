"""The user's conftest.py (copied under that name into the project): configures the team
registry for the test session only."""

import team_registry

team_registry.OVERRIDES["max_model_len"] = 2048
