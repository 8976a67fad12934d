"""What a failed check says: what was expected, what happened, how to fix it.

:class:`CheckFailed` carries the three parts separately (the certificate keeps them) and
formats them as one readable message. ``happened`` names the phase, key, value and type
wherever they are known; :func:`describe` renders a value with its type.
"""

from __future__ import annotations

from typing import Any, Final

from reference_runner.naming import safe_repr

_MAX_REPR: Final = 120


def describe(value: Any) -> str:
    """``repr`` of ``value`` (shortened) followed by its type, e.g. ``'x' (str)``."""
    text = safe_repr(value, _MAX_REPR)
    return f"{text} ({type(value).__module__}.{type(value).__qualname__})".replace(
        "(builtins.", "("
    )


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, with its notes, on one line each."""
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    text = f"{name}: {exc}"
    for note in getattr(exc, "__notes__", None) or ():
        text += f"\n  note: {note}"
    return text


class CheckFailed(AssertionError):
    """A conformance rule is broken.

    Args:
        expected: what the rule asks for, concretely.
        happened: what the callback did: the phase, key, value (with its type), error.
        fix: how to make the callback follow the rule.
    """

    def __init__(self, *, expected: str, happened: str, fix: str) -> None:
        self.expected = expected
        self.happened = happened
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """The three parts, labelled, one block each."""
        return "\n".join(
            (
                _block("expected", self.expected),
                _block("happened", self.happened),
                _block("fix", self.fix),
            )
        )

    def as_dict(self) -> dict[str, str]:
        """The three parts, for the certificate."""
        return {"expected": self.expected, "happened": self.happened, "fix": self.fix}


def _block(label: str, text: str) -> str:
    lines = text.strip().splitlines() or [""]
    pad = " " * 10
    head = f"{label + ':':<10}{lines[0]}"
    return "\n".join([head, *(pad + line for line in lines[1:])])


class Advice(str):
    """What a check returns when the callback passes but something is worth changing: the
    kit records it as the check's note and as ``advice``, and the summary shows it."""


#: The reason of every check skipped because the callback does not load; ``{rule}`` is the
#: loading check that says why.
DOES_NOT_LOAD: Final = "the callback does not load (see {rule})"


class CheckSkipped(Exception):
    """The check cannot judge the callback, because an earlier rule already failed (the
    reason says which) or the cluster cannot do what the check needs."""


class Inconclusive(Exception):
    """The check cannot judge the callback *here*: what it needs is missing from this
    environment, not wrong in the callback (docs/design.md §Environment gaps are not
    defects). The verdict is then ``inconclusive``, never ``certified`` nor ``rejected``.

    Args:
        needs: what is missing, concretely (``the package 'vllm'``, ``network access``).
        where: where the callback needed it (the hook, the import, the file and line).
        todo: what the user can do (certify in the deployment's image, install it, serve it).
    """

    def __init__(self, *, needs: str, where: str, todo: str) -> None:
        self.needs = needs
        self.where = where
        self.todo = todo
        super().__init__(
            f"inconclusive: {where} needs {needs}, which this environment lacks; {todo}"
        )

    def as_dict(self) -> dict[str, str]:
        """The three parts, for the certificate."""
        return {"needs": self.needs, "where": self.where, "todo": self.todo}
