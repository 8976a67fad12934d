"""A local S3 server for a test run, so that cloud downloads (Ray's ``CloudDownloader``,
``CloudFileSystem``) are tested offline against a real S3-protocol endpoint.

Modules, each with one job:

* :mod:`.server` -- :class:`LocalS3`: moto's server mode on 127.0.0.1, buckets, listing;
* :mod:`.buckets` -- bucket contents from a dict or a folder (``BUCKET=DIR``), checked;
* :mod:`.environment` -- the variables that point boto3/pyarrow/Ray at it, applied and
  restored exactly;
* :mod:`.fixture` -- the ``s3_object_store`` pytest fixture;
* :mod:`.errors` -- :class:`ObjectStoreError`.

See ``docs/object_store.md``. Importing this package imports a few standard-library
modules only (the server module, moto and boto3 are imported when a server starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_raycallbacks._lazy import lazy_exports

from .buckets import BucketSource, BucketSpecs, parse_bucket_spec, resolve_buckets
from .environment import CLEARED_VARIABLES, applied_environment, s3_environment
from .errors import ObjectStoreError

if TYPE_CHECKING:
    from .server import LocalS3

# The server module (urllib, http clients) is imported on first use: pytest loads the plugin,
# which imports the fixture module of this package, in every run.
__getattr__ = lazy_exports(__name__, {"LocalS3": "server"})

__all__ = [
    "CLEARED_VARIABLES",
    "BucketSource",
    "BucketSpecs",
    "LocalS3",
    "ObjectStoreError",
    "applied_environment",
    "parse_bucket_spec",
    "resolve_buckets",
    "s3_environment",
]
