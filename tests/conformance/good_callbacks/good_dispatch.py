"""Dispatches on the phase through a table keyed by the runner's own constants."""

from reference_runner import phases

SPEC = "good_dispatch.callback"


def _before_download(config, data):
    return {"local_node_download_model": "TOKENIZER_ONLY"}


def _before_engine(config, data):
    data.setdefault("extra_init_kwargs", {})["max_num_seqs"] = 64
    return None


HANDLERS = {phases.PRE_DOWNLOAD: _before_download, phases.PRE_ENGINE_INIT: _before_engine}


def callback(phase, config, data):
    handler = HANDLERS.get(phase)
    return handler(config, data) if handler else None
