"""The environment that points S3 clients at the local server, and applying it to
``os.environ`` with an exact restore.

Who reads what (Ray 2.60, boto3/botocore 1.3x+, pyarrow):

* Ray's ``CloudFileSystem`` sends ``s3://`` URIs to its boto3 ``S3FileSystem``, which builds
  ``boto3.client("s3", config=...)`` with no endpoint: botocore takes it from
  ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``), unless
  ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true -- so that one is removed;
* ``pyarrow-s3://`` URIs go to Ray's ``PyArrowFileSystem``, which passes
  ``AWS_ENDPOINT_URL_S3`` as pyarrow's ``endpoint_override`` and turns on virtual-host
  addressing when ``AWS_S3_ADDRESSING_STYLE`` is ``"virtual"``. pyarrow itself does not
  honour ``AWS_ENDPOINT_URL`` there: without ``AWS_ENDPOINT_URL_S3`` it goes to AWS;
* credentials: the dummy ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` come first in both
  credential chains; a session token, profile, role or container credentials that the
  machine has set are removed so they cannot take precedence, and the config files point
  at ``os.devnull`` so a developer's ``~/.aws/config`` (its endpoints, addressing style or
  profile) cannot redirect the clients; ``AWS_EC2_METADATA_DISABLED`` stops the metadata
  service look-up (a network call);
* the loopback addresses are added to ``NO_PROXY``/``no_proxy`` so that a proxy configured
  on the machine is not asked for the local server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

#: The dummy credentials the server accepts (moto accepts any).
ACCESS_KEY_ID: Final = "raycallbacks-local"
SECRET_ACCESS_KEY: Final = "raycallbacks-local-secret"
DEFAULT_REGION: Final = "us-east-1"

#: Variables removed while the environment is applied: each could send a client elsewhere
#: or make it use other credentials than the dummy ones.
CLEARED_VARIABLES: Final = (
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
)

_LOOPBACK: Final = ("127.0.0.1", "localhost")


def _no_proxy(current: str | None) -> str:
    """``current`` (a comma-separated NO_PROXY value) with the loopback hosts added."""
    hosts = [h.strip() for h in (current or "").split(",") if h.strip()]
    return ",".join(hosts + [h for h in _LOOPBACK if h not in hosts])


def s3_environment(
    endpoint_url: str,
    *,
    region: str = DEFAULT_REGION,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables to set so that boto3, pyarrow and Ray's cloud filesystems use the S3
    server at ``endpoint_url`` (see the module docstring). ``environ`` (default
    ``os.environ``) supplies the ``NO_PROXY`` values to extend. :data:`CLEARED_VARIABLES`
    must be removed as well: :func:`applied_environment` does both."""
    environ = os.environ if environ is None else environ
    no_proxy = _no_proxy(environ.get("NO_PROXY") or environ.get("no_proxy"))
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


@contextmanager
def applied_environment(
    variables: Mapping[str, str], *, cleared: tuple[str, ...] = CLEARED_VARIABLES
) -> Iterator[None]:
    """Set ``variables`` and remove ``cleared`` in ``os.environ`` for the ``with`` body,
    then restore every one of them exactly as it was (a variable that was absent is
    removed again, one that was set gets its old value back), also when the body raises.
    Variables the body itself set or changed outside these names are left alone."""
    touched = list(dict.fromkeys([*variables, *cleared]))
    saved = {name: os.environ.get(name) for name in touched}
    try:
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(variables)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


__all__ = [
    "ACCESS_KEY_ID",
    "CLEARED_VARIABLES",
    "DEFAULT_REGION",
    "SECRET_ACCESS_KEY",
    "applied_environment",
    "s3_environment",
]
