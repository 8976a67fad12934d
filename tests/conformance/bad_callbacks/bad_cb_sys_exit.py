"""Breaks errors.only-exceptions: a CallbackBase hook exits when a licence key is missing
(SystemExit passes Ray's run_callback whatever raise_error_on_callback says)."""

import os
import sys

from ray.llm._internal.common.callbacks.base import CallbackBase

BREAKS = "errors.only-exceptions"
SPEC = "bad_cb_sys_exit:LicenceGate"


class LicenceGate(CallbackBase):
    async def on_before_node_init(self) -> None:
        if not os.environ.get("MYTEAM_LICENSE_KEY_FOR_TESTS"):
            sys.exit("MYTEAM_LICENSE_KEY_FOR_TESTS is not set")
