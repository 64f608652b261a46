"""Reading a bot folder's YAML files: strict models, and errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from callbot.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A configuration mapping: unknown keys are mistakes, and a loaded configuration never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def read_yaml(path: Path, fix_hint: str) -> dict[str, Any]:
    """The top-level mapping of ``path``; ``fix_hint`` says what to do when the file is missing."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; {fix_hint}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return raw


def validate(model: type[M], raw: dict[str, Any], path: Path) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc, raw)}") from exc


def describe(exc: ValidationError, raw: object = None) -> str:
    """Pydantic's errors as ``key.path: what is wrong`` (the model validators already say the fix)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(_key_path(err["loc"], raw))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required; add it"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling (docs/bot-folder.md and docs/routing.md list the keys)"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(dict.fromkeys(parts))


def _key_path(loc: tuple[int | str, ...], raw: object) -> list[str]:
    """The location as the keys written in the file: pydantic inserts the tag of a discriminated union
    (``intents.greet.answer.response``), which is not a key of the file, so it is left out."""
    keys: list[str] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("action") == part:
            continue  # a union tag: the node stays the same mapping
        keys.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return keys
