"""Reading and writing NLU training data: Rasa YAML (with entity annotations) or CSV ``text,label``."""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from callbot.errors import ConfigError
from nlu.spoken_numbers import digits_from_speech

_ANNOTATION_SPAN = re.compile(r"\[([^\]]+)\](\([^)]+\)|\{[^}]*\})")
_ANNOTATION = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)|\[([^\]]+)\]\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # as a caller says it, annotations removed
    intent: str
    annotated: str  # as written in the training file, entity annotations kept


@dataclass(frozen=True, slots=True)
class TrainingData:
    examples: tuple[Example, ...]
    extras: tuple[dict[str, Any], ...] = ()  # synonyms, regexes and lookups, kept as they are

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})


def plain_text(annotated: str) -> str:
    return _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), annotated)


def load_training_data(path: Path) -> TrainingData:
    """Rasa NLU YAML or a CSV with ``text,label`` columns (public benchmarks)."""
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read training data: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("nlu"), list):
        raise ConfigError(f"{path}: expected Rasa NLU training data with an 'nlu:' list")
    examples: list[Example] = []
    extras: list[dict[str, Any]] = []
    for item in document["nlu"]:
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: every 'nlu:' entry must be a mapping, got {item!r}")
        if "intent" not in item:
            extras.append(item)
            continue
        for line in str(item.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                annotated = line[2:].strip()
                examples.append(Example(plain_text(annotated), str(item["intent"]), annotated))
    if not examples:
        raise ConfigError(f"{path}: no training examples found")
    return TrainingData(tuple(examples), tuple(extras))


def _load_csv(path: Path) -> TrainingData:
    try:
        return _read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read training data: {exc}") from exc


def _read_csv(path: Path) -> TrainingData:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        label = next((name for name in ("label", "intent", "category") if name in fields), None)
        if "text" not in fields or label is None:
            raise ConfigError(
                f"{path}: a CSV needs a 'text' column and a 'label' (or 'intent', 'category') column, "
                f"found {reader.fieldnames}"
            )
        examples = [
            Example(row["text"].strip(), row[label].strip(), _escape(row["text"].strip()))
            for row in reader
            if row["text"].strip()
        ]
    return TrainingData(tuple(examples))


def _escape(text: str) -> str:
    # brackets and braces would be read as entity annotations by Rasa
    return text.replace("[", "(").replace("]", ")").replace("{", "(").replace("}", ")")


def with_digits(data: TrainingData, language: str) -> TrainingData:
    """Training examples as the NLU sees callers at run time: spoken numbers rewritten as digits (inside entity
    annotations too), so that what the model learns matches what it will be given."""
    examples = tuple(
        Example(digits_from_speech(e.text, language), e.intent, _annotated_with_digits(e.annotated, language))
        for e in data.examples
    )
    return TrainingData(examples, data.extras)


def _annotated_with_digits(annotated: str, language: str) -> str:
    def rewrite(segment: str) -> str:
        core = segment.strip()
        if not core:
            return segment
        lead = segment[: len(segment) - len(segment.lstrip())]
        trail = segment[len(segment.rstrip()) :]
        return lead + digits_from_speech(core, language) + trail

    pieces: list[str] = []
    position = 0
    for match in _ANNOTATION_SPAN.finditer(annotated):
        pieces.append(rewrite(annotated[position : match.start()]))
        pieces.append(f"[{rewrite(match.group(1))}]{match.group(2)}")
        position = match.end()
    pieces.append(rewrite(annotated[position:]))
    return "".join(pieces)


def write_rasa_yaml(data: TrainingData, path: Path) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for example in data.examples:
        by_intent[example.intent].append(example.annotated)
    nlu: list[dict[str, Any]] = [
        {"intent": intent, "examples": "".join(f"- {line}\n" for line in lines)}
        for intent, lines in sorted(by_intent.items())
    ]
    nlu.extend(data.extras)
    path.write_text(
        yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def stratified_folds(examples: tuple[Example, ...], folds: int, seed: int = 42) -> list[tuple[Example, ...]]:
    """Split into ``folds`` parts with each intent spread evenly; deterministic for a seed."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    parts: list[list[Example]] = [[] for _ in range(folds)]
    rng = random.Random(seed)
    offset = 0
    for intent in sorted(by_intent):
        group = by_intent[intent]
        rng.shuffle(group)
        for index, example in enumerate(group):
            parts[(index + offset) % folds].append(example)
        offset += len(group)
    return [tuple(part) for part in parts]


def stratified_split(data: TrainingData, test_share: float, seed: int = 42) -> tuple[TrainingData, TrainingData]:
    """Hold out about ``test_share`` of each intent's examples."""
    folds = max(2, round(1 / test_share))
    parts = stratified_folds(data.examples, folds, seed)
    test = parts[0]
    train = tuple(e for part in parts[1:] for e in part)
    return TrainingData(train, data.extras), TrainingData(test, data.extras)
