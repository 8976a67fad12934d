"""Loads an optional helper by its module name, leaving sys.path alone."""

import importlib
import importlib.util
import sys

SPEC = "good_imports_by_package.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        found = importlib.util.find_spec("json") is not None
        json = importlib.import_module("json")
        return {"myteam.helper": json.dumps({"found": found, "paths": len(sys.path)})}
    return None
