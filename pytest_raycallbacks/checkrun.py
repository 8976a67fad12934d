"""Old import path of :class:`StaleWaiverWarning`, kept for warning filters written before
the kit became a package (``-W error::pytest_raycallbacks.checkrun.StaleWaiverWarning``);
new filters name ``pytest_raycallbacks.kit.StaleWaiverWarning``."""

from .kit.check_item import StaleWaiverWarning

__all__ = ["StaleWaiverWarning"]
