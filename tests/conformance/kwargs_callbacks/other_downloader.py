"""Ray's ``CloudDownloader`` under a second spec, so that one kit run can certify it twice
with different ``callback_kwargs`` (one spec, one set of kwargs)."""

from ray.llm._internal.common.callbacks.cloud_downloader import CloudDownloader

__all__ = ["CloudDownloader"]
