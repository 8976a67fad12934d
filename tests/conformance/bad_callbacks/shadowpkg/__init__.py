"""Breaks loading.both-forms: the package's ``callbacks`` registry has the same name as its
legacy module ``shadowpkg/callbacks.py``, so ``shadowpkg:callbacks.warmup`` (the registry's)
and ``shadowpkg.callbacks.warmup`` (the module's) are different callbacks."""

from .registry import Registry

BREAKS = "loading.both-forms"
SPEC = "shadowpkg:callbacks.warmup"

callbacks = Registry()


@callbacks.register
def warmup(phase, config, data):
    if phase == "post_initialization":
        return {"shadowpkg.warm": True}
    return None
