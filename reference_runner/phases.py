"""The phases of node initialization, in the order ``initialize_node`` emits them."""

from __future__ import annotations

from typing import Final

PRE_INITIALIZATION: Final = "pre_initialization"
PRE_DOWNLOAD: Final = "pre_download"
POST_DOWNLOAD: Final = "post_download"
POST_PLACEMENT_GROUP: Final = "post_placement_group"
PRE_ENGINE_INIT: Final = "pre_engine_init"
POST_INITIALIZATION: Final = "post_initialization"

#: Every phase ``initialize_node`` emits, in emission order. Callbacks must tolerate
#: names outside this tuple (future phases) by ignoring them.
PHASES: Final[tuple[str, ...]] = (
    PRE_INITIALIZATION,
    PRE_DOWNLOAD,
    POST_DOWNLOAD,
    POST_PLACEMENT_GROUP,
    PRE_ENGINE_INIT,
    POST_INITIALIZATION,
)
