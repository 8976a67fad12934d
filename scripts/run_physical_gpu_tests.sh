#!/usr/bin/env bash
# Run the physical-GPU tests of gpu_ray_cluster in one go, on a machine with NVIDIA GPUs.
#
#   scripts/run_physical_gpu_tests.sh            # all live tests, GPUs required
#   scripts/run_physical_gpu_tests.sh -x -v      # extra pytest arguments are passed on
#
# --raycallbacks-gpus=physical makes the session cluster use this machine's GPUs and FAIL
# (not skip) when there are none. The physical_gpu tests check that a worker inside a GPU
# bundle sees exactly the GPUs Ray assigned (CUDA_VISIBLE_DEVICES, and
# torch.cuda.device_count() when torch is installed); the other live tests run on the
# physical cluster too (simulate-only ones, such as add_node, skip).
# Set PYTHON to choose the interpreter (default: the repository's .venv, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
echo "== GPUs on this machine"
nvidia-smi -L || echo "nvidia-smi: not available (the tests will fail: physical GPUs are required)"
echo "== physical-GPU tests"
exec "$PYTHON" -m pytest tests/live -m live --raycallbacks-gpus=physical -p no:cacheprovider -rA "$@"
