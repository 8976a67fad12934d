"""The fake cluster's engine: nodes, placement groups, tasks, objects and actors in memory.

Contract:

* All state lives in the records of :mod:`..model` and changes only under the engine's lock.
  Every change that could let something waiting proceed runs the pump (place pending
  groups in creation order, then start pending tasks in submission order) and wakes the
  waiters.
* Task bodies run in daemon threads of this process, one thread per run, with the task's
  context (:mod:`..context`): its node id, placement group, GPU ids and environment
  (``CUDA_VISIBLE_DEVICES``, runtime env ``env_vars``, node ``env``). Arguments, results
  and ``ray.put`` values go through cloudpickle as in Ray (``serialize=False`` skips it).
  A task holds its resources (from its node, or from its bundle) while it runs and, as in
  Ray, gives its CPUs back while it blocks in ``ray.get``/``ray.wait``.
* Waits (:meth:`Engine.wait_for`) never hang: if nothing in the cluster is running and
  nothing is scheduled to start, a wait without timeout raises
  :class:`~..errors.FakeRayDeadlockError` naming what is missing, and a wait with a timeout
  jumps the clock to its end (``autojump``) instead of sleeping.
* Errors are Ray's: task exceptions become ``ray.exceptions.RayTaskError`` (raised by
  ``ray.get`` as an instance of both it and the original type), and removed groups, dead
  nodes, cancelled tasks and dead actors give the ``ray.exceptions`` types Ray gives.

:class:`Engine` is a core (:mod:`.core`: the records, the lock, the pump and the waits)
plus one mixin per job:

* :mod:`.nodes` -- adding and removing nodes, the resources Ray reports;
* :mod:`.groups` -- placement groups;
* :mod:`.objects` -- the object store, ``ray.get`` and ``ray.wait``;
* :mod:`.scheduling` -- task submission and where each task runs;
* :mod:`.execution` -- task bodies in threads, results, errors, retries, cancellation;
* :mod:`.actors` -- actor creation, names, call queues and death;
* :mod:`.describing` -- what a wait that cannot succeed is missing.

Importing this package imports Ray.
"""

from __future__ import annotations

from .actors import EngineActors
from .core import EngineCore
from .describing import EngineDescribing
from .execution import EngineExecution
from .groups import EngineGroups
from .nodes import EngineNodes
from .objects import EngineObjects
from .scheduling import EngineScheduling


class Engine(
    EngineNodes,
    EngineGroups,
    EngineObjects,
    EngineScheduling,
    EngineExecution,
    EngineActors,
    EngineDescribing,
    EngineCore,
):
    """One fake cluster's state and scheduler. Use it through :class:`FakeRayCluster`."""


__all__ = ["Engine"]
