"""The legacy callbacks module (kept for old configs)."""


def warmup(phase, config, data):
    return None
