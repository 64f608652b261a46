"""Editing ``nlu.yml`` as text, line by line, so that its comments, order and layout stay as operations wrote
them: add, change, delete or move one example, or add an intent. The result is validated by the caller (the
bot folder's loader) before it is saved."""

from __future__ import annotations

import re

from callbot.errors import ConfigError

_INTENT = re.compile(r"^- intent:\s*(\S+)\s*$")
_EXAMPLE = re.compile(r"^(\s+)- (.*)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def clean_example(example: str) -> str:
    text = " ".join(example.split())
    if not text:
        raise ConfigError("an example cannot be empty")
    if len(text) > 500:
        raise ConfigError("an example is one utterance: at most 500 characters")
    return text


def add_example(document: str, intent: str, example: str) -> str:
    lines = document.splitlines()
    start, end, indent = _examples_block(lines, intent)
    example = clean_example(example)
    if example in _examples(lines, start, end):
        raise ConfigError(f"'{example}' is already an example of {intent}")
    lines.insert(end, f"{indent}- {example}")
    return "\n".join(lines) + "\n"


def remove_example(document: str, intent: str, example: str) -> str:
    lines = document.splitlines()
    start, end, _ = _examples_block(lines, intent)
    index = _find(lines, start, end, intent, example)
    if end - start == 1:
        raise ConfigError(f"{intent} would have no example left; delete the intent in bot.yml and nlu.yml instead")
    del lines[index]
    return "\n".join(lines) + "\n"


def replace_example(document: str, intent: str, old: str, new: str) -> str:
    lines = document.splitlines()
    start, end, indent = _examples_block(lines, intent)
    index = _find(lines, start, end, intent, old)
    lines[index] = f"{indent}- {clean_example(new)}"
    return "\n".join(lines) + "\n"


def move_example(document: str, intent: str, example: str, to_intent: str) -> str:
    return add_example(remove_example(document, intent, example), to_intent, example)


def add_intent(document: str, intent: str, examples: list[str]) -> str:
    if not _NAME.match(intent):
        raise ConfigError(f"'{intent}': an intent name is lowercase letters, digits and _, e.g. card_delivery")
    lines = document.splitlines()
    if any(_INTENT.match(line) and _INTENT.match(line).group(1) == intent for line in lines):  # type: ignore[union-attr]
        raise ConfigError(f"the intent {intent} already exists")
    cleaned = [clean_example(e) for e in examples if e.strip()]
    if not cleaned:
        raise ConfigError("give the new intent at least one example")
    last_end = max(
        (_examples_block(lines, m.group(1))[1] for line in lines if (m := _INTENT.match(line))), default=len(lines)
    )
    block = [f"- intent: {intent}", "  examples: |", *(f"    - {e}" for e in cleaned)]
    lines[last_end:last_end] = block
    return "\n".join(lines) + "\n"


def _examples_block(lines: list[str], intent: str) -> tuple[int, int, str]:
    """(first example line, line after the last example, the examples' indentation) of ``intent``."""
    for index, line in enumerate(lines):
        match = _INTENT.match(line)
        if match and match.group(1) == intent:
            cursor = index + 1
            while cursor < len(lines) and not lines[cursor].strip().startswith("examples:"):
                if lines[cursor].startswith("- "):
                    raise ConfigError(f"nlu.yml: intent {intent} has no 'examples: |' block")
                cursor += 1
            start = end = cursor + 1
            indent = "    "
            while end < len(lines) and (example := _EXAMPLE.match(lines[end])):
                indent = example.group(1)
                end += 1
            return start, end, indent
    raise ConfigError(f"no intent {intent} in nlu.yml")


def _examples(lines: list[str], start: int, end: int) -> list[str]:
    return [m.group(2).strip() for line in lines[start:end] if (m := _EXAMPLE.match(line))]


def _find(lines: list[str], start: int, end: int, intent: str, example: str) -> int:
    for index in range(start, end):
        match = _EXAMPLE.match(lines[index])
        if match and match.group(2).strip() == example.strip():
            return index
    raise ConfigError(f"'{example}' is not an example of {intent}")
