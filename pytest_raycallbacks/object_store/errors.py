"""The one error the local object store raises for bad input or a server that won't start."""

from __future__ import annotations


class ObjectStoreError(RuntimeError):
    """The local S3 server could not start or answer, or a bucket spec, bucket name or
    folder is wrong. The message names the thing at fault and how to fix it."""


__all__ = ["ObjectStoreError"]
