"""Comparing a freshly trained NLU model with the published one, on the bot's held-out phone utterances
(``tests/phone_utterances.yml``): accuracy under the bot's confidence policy, and the intents that got worse."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from callbot.errors import ConfigError
from nlu.evaluation import parse_on_server
from nlu.spoken_numbers import digits_from_speech

HELD_OUT = Path("tests") / "phone_utterances.yml"


def held_out_cases(bot_dir: Path) -> list[tuple[str, str]]:
    path = bot_dir / HELD_OUT
    try:
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: the held-out utterances to compare models on cannot be read: {exc}") from exc
    return [(str(case["text"]), str(case["intent"])) for case in cases]


async def evaluate(
    model: Path, cases: list[tuple[str, str]], language: str, threshold: float, margin: float, rasa_venv: Path
) -> dict[str, Any]:
    """Parse every held-out utterance with ``model`` on a real Rasa server; cached beside the model."""
    key = hashlib.sha256(json.dumps([cases, language, threshold, margin]).encode()).hexdigest()[:16]
    cache = model.with_name(f"{model.name}.eval-{key}.json")
    if cache.is_file():
        cached: dict[str, Any] = json.loads(cache.read_text(encoding="utf-8"))
        return cached
    texts = [digits_from_speech(text, language) for text, _ in cases]
    results, _, load_seconds = await parse_on_server(model, texts, rasa_venv)
    per_intent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for (text, expected), result in zip(cases, results, strict=True):
        accepted = result.intent is not None and result.confidence >= threshold and result.margin >= margin
        correct = accepted and result.intent == expected
        per_intent[expected][1] += 1
        per_intent[expected][0] += int(correct)
        if not correct:
            misses.append(
                {"text": text, "expected": expected, "got": result.intent, "confidence": round(result.confidence, 3)}
            )
    report = {
        "model": model.name,
        "cases": len(cases),
        "accuracy": round(sum(c for c, _ in per_intent.values()) / max(len(cases), 1), 4),
        "recall": {intent: round(c / n, 4) for intent, (c, n) in sorted(per_intent.items())},
        "misses": misses,
        "load_seconds": round(load_seconds, 1),
    }
    cache.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return report


def compare(candidate: dict[str, Any], published: dict[str, Any] | None) -> dict[str, Any]:
    if published is None:
        return {"candidate": candidate, "published": None, "accuracy_change": None, "worse": [], "better": []}
    worse, better = [], []
    for intent, recall in candidate["recall"].items():
        before = published["recall"].get(intent)
        if before is not None and recall < before:
            worse.append({"intent": intent, "before": before, "after": recall})
        elif before is not None and recall > before:
            better.append({"intent": intent, "before": before, "after": recall})
    return {
        "candidate": candidate,
        "published": published,
        "accuracy_change": round(candidate["accuracy"] - published["accuracy"], 4),
        "worse": worse,
        "better": better,
    }
