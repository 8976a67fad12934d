"""The files of the bundled tiny model (``reference_runner.TINY_MODEL_PATH``), spelt out so
that a file missing from the package data fails the download tests."""

from __future__ import annotations

from typing import Final

TOKENIZER_FILES: Final = frozenset(
    {
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }
)
ALL_FILES: Final = TOKENIZER_FILES | {"README.md", "model.safetensors"}
