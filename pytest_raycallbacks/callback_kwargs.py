"""``callback_kwargs`` given on the command line, as the kit and ``raycallbacks verify`` read
them, and as the certificate records them.

Ray 2.60 builds a ``CallbackBase`` subclass as ``cls(llm_config=..., raise_error_on_callback=...,
ctx_kwargs=..., **callback_config.callback_kwargs)``. The user gives those kwargs once per
spec, in the same syntax to ``pytest --raycallbacks-callback-kwargs`` (ini
``raycallbacks_callback_kwargs``, one per line) and to ``raycallbacks verify
--callback-kwargs``:

* ``SPEC=JSON``: a JSON object, e.g. ``mymod:Warm={"bucket": "s3://models/extra"}``;
* ``SPEC=@FILE``: the object read from a ``.json``, ``.yaml`` or ``.yml`` file (a path
  relative to ``base_dir``, the folder the command was run from).

The certificate records each ``CallbackBase`` subclass's kwargs with the values of keys that
look secret (:func:`looks_secret`: ``*token*``, ``*key*``, ``*secret*``, ``*password*``, ...)
masked, at any depth, and :func:`kwargs_sha256` of that masked form: ``raycallbacks verify``
compares it with the hash of the kwargs about to be deployed. Masked values are not part of
the hash, so rotating a token does not void a certificate, and the certificate does not let
anyone test guesses of a secret against it.

Imports only the standard library (and PyYAML for a YAML file): no pytest, no Ray.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

#: What a masked value is recorded as.
MASK: Final = "***"
#: Key names (case-insensitive, anywhere in the name) whose values are masked.
SECRET_KEY_PARTS: Final = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "credential",
    "auth",
    "private",
)
_SECRET = re.compile("|".join(SECRET_KEY_PARTS), re.IGNORECASE)
_YAML_SUFFIXES: Final = (".yaml", ".yml")


class CallbackKwargsError(ValueError):
    """A ``SPEC=JSON`` / ``SPEC=@FILE`` value that cannot be read; the message names the
    value, what is wrong and the accepted forms."""


def _form_hint(option: str) -> str:
    return (
        f"give {option} SPEC=JSON (a JSON object, e.g. "
        '\'pkg.mod:Cls={"paths": [["s3://bucket/prefix", "/tmp/dest"]]}\') or '
        "SPEC=@FILE (a .json, .yaml or .yml file holding that object)"
    )


def parse_one(
    text: str, *, base_dir: str | Path = ".", option: str = "--raycallbacks-callback-kwargs"
) -> tuple[str, dict[str, Any]]:
    """``SPEC=JSON`` or ``SPEC=@FILE`` as ``(spec, kwargs)`` (see the module docstring).

    Raises :class:`CallbackKwargsError` for a missing ``=`` or spec, invalid JSON or YAML,
    an unreadable file, or a value that is not an object with str keys.
    """
    spec, sep, value = str(text).partition("=")
    spec, value = spec.strip(), value.strip()
    if not sep or not spec or not value:
        raise CallbackKwargsError(f"{option} {text!r} is not SPEC=JSON; {_form_hint(option)}")
    if value.startswith("@"):
        kwargs = _read_file(spec, value[1:], Path(base_dir), option)
    else:
        try:
            kwargs = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CallbackKwargsError(
                f"{option} for {spec}: {value!r} is not valid JSON ({exc.msg} at column "
                f"{exc.colno}); {_form_hint(option)}. Quote the whole value for the shell"
            ) from None
    return spec, _checked_object(spec, kwargs, option)


def _read_file(spec: str, name: str, base_dir: Path, option: str) -> Any:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CallbackKwargsError(
            f"{option} for {spec}: cannot read {str(path)!r}: {exc.strerror or exc}"
        ) from None
    if path.suffix.lower() in _YAML_SUFFIXES:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CallbackKwargsError(
                f"{option} for {spec}: {str(path)!r} is not valid YAML: {exc}"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CallbackKwargsError(
            f"{option} for {spec}: {str(path)!r} is not valid JSON ({exc.msg} at line "
            f"{exc.lineno}); name a .yaml/.yml file for YAML"
        ) from None


def _checked_object(spec: str, value: Any, option: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CallbackKwargsError(
            f"{option} for {spec}: got a {type(value).__name__} ({value!r:.60}), where an "
            'object of keyword arguments is expected, e.g. {"paths": [...]}'
        )
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise CallbackKwargsError(
            f"{option} for {spec}: keys {bad!r} are not strings; callback_kwargs become "
            "keyword arguments of the class"
        )
    return value


def parse_all(
    values: Iterable[str],
    *,
    base_dir: str | Path = ".",
    option: str = "--raycallbacks-callback-kwargs",
) -> dict[str, dict[str, Any]]:
    """Every ``SPEC=...`` value by spec; a spec given twice is a :class:`CallbackKwargsError`."""
    out: dict[str, dict[str, Any]] = {}
    for text in values:
        if not str(text).strip():
            continue
        spec, kwargs = parse_one(text, base_dir=base_dir, option=option)
        if spec in out:
            raise CallbackKwargsError(
                f"{option}: {spec} is given twice; give all of its callback_kwargs in one "
                "JSON object (or one file)"
            )
        out[spec] = kwargs
    return out


def looks_secret(key: str) -> bool:
    """Whether a key's name looks like it holds a secret (see :data:`SECRET_KEY_PARTS`)."""
    return bool(_SECRET.search(key))


def masked(value: Any) -> Any:
    """``value`` with the values of secret-looking keys replaced by :data:`MASK`, in every
    nested object (lists and tuples are walked; tuples become lists, as in JSON)."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and looks_secret(key) else masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return value


def kwargs_sha256(kwargs: Mapping[str, Any]) -> str:
    """SHA-256 of the masked kwargs as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(masked(kwargs), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def certificate_record(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What the certificate records for one class: ``{"callback_kwargs": <masked>,
    "callback_kwargs_sha256": <hash>}``."""
    return {"callback_kwargs": masked(kwargs), "callback_kwargs_sha256": kwargs_sha256(kwargs)}


__all__ = [
    "MASK",
    "SECRET_KEY_PARTS",
    "CallbackKwargsError",
    "certificate_record",
    "kwargs_sha256",
    "looks_secret",
    "masked",
    "parse_all",
    "parse_one",
]
