"""initialize_node before any cluster is reachable."""

from __future__ import annotations

import subprocess
import sys


def test_without_a_connected_ray_the_error_says_how_to_connect() -> None:
    code = (
        "import asyncio\n"
        "from reference_runner import (LLMConfig, RayNotConnectedError, initialize_node,\n"
        "    TINY_MODEL_PATH)\n"
        "try:\n"
        "    asyncio.run(initialize_node(LLMConfig(model_id=TINY_MODEL_PATH)))\n"
        "except RayNotConnectedError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "call ray.init(...) first" in out.stdout
    assert "fake_ray_cluster or gpu_ray_cluster" in out.stdout
