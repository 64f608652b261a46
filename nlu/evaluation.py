"""Measuring an NLU pipeline: cross-validation or a held-out test set, the confidence policy, off-topic rejection.

Training runs ``rasa train nlu`` in the Rasa virtualenv and parsing goes through a real Rasa server over HTTP, as
in the service, so load time and parse latency are the ones callers get; the scoring is ours, so the figures mean
the same thing for every pipeline compared.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callbot.frames import NluResult
from nlu.client import CircuitBreaker, RasaClient
from nlu.sidecar import RasaSidecar
from nlu.training import train_files
from nlu.training_data import Example, TrainingData, stratified_folds, write_rasa_yaml

OUT_OF_SCOPE = "out_of_scope"
REJECTED = OUT_OF_SCOPE  # what the dialogue does with a rejected utterance: treat it as not understood


@dataclass(frozen=True, slots=True)
class Policy:
    threshold: float
    margin: float

    def accepts(self, prediction: Prediction) -> bool:
        return prediction.confidence >= self.threshold and prediction.margin >= self.margin

    def label(self, prediction: Prediction) -> str:
        return prediction.intent if prediction.intent and self.accepts(prediction) else REJECTED


@dataclass(frozen=True, slots=True)
class Prediction:
    text: str
    label: str
    intent: str | None
    confidence: float
    margin: float
    parse_ms: float
    entities: tuple[tuple[str, str], ...] = ()


@dataclass
class Timings:
    train_seconds: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)
    parse_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.parse_ms) or [0.0]
        return {
            "train_seconds_median": statistics.median(self.train_seconds or [0.0]),
            "model_load_seconds_median": statistics.median(self.load_seconds or [0.0]),
            "parse_ms_median": statistics.median(ordered),
            "parse_ms_p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        }


def parse_batch(model: Path, texts: list[str], rasa_venv: Path) -> tuple[list[NluResult], list[float], float]:
    """Parse ``texts`` with ``model`` on a real Rasa server, as the service does: results, per-text latency
    (HTTP round trip, ms) and the time the server took to start and load the model (s)."""
    return asyncio.run(parse_on_server(model, texts, rasa_venv))


async def parse_on_server(model: Path, texts: list[str], rasa_venv: Path) -> tuple[list[NluResult], list[float], float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="callbot-eval-rasa-") as work:
        sidecar = RasaSidecar(rasa_venv, model, port, Path(work) / "rasa.log", start_timeout_s=600)
        started = time.perf_counter()
        await sidecar.start()
        load_seconds = time.perf_counter() - started
        client = RasaClient(sidecar.url, timeout_s=30, token=sidecar.token, breaker=CircuitBreaker(threshold=10**9))
        try:
            results, latencies = [], []
            for text in texts:
                begun = time.perf_counter()
                results.append(await client.parse(text))
                latencies.append((time.perf_counter() - begun) * 1000)
        finally:
            await client.aclose()
            await sidecar.stop()
    return results, latencies, load_seconds


def predict(model: Path, examples: tuple[Example, ...], rasa_venv: Path, timings: Timings) -> list[Prediction]:
    results, latencies, load_seconds = parse_batch(model, [e.text for e in examples], rasa_venv)
    timings.load_seconds.append(load_seconds)
    timings.parse_ms += latencies
    return [
        Prediction(
            example.text, example.intent, result.intent, result.confidence, result.margin, latency, result.entities
        )
        for example, result, latency in zip(examples, results, latencies, strict=True)
    ]


def train_and_predict(
    train: TrainingData, test: tuple[Example, ...], config: Path, rasa_venv: Path, timings: Timings
) -> list[Prediction]:
    with tempfile.TemporaryDirectory(prefix="callbot-eval-") as work:
        nlu_file = Path(work) / "nlu.yml"
        write_rasa_yaml(train, nlu_file)
        model = Path(work) / "model.tar.gz"
        timings.train_seconds.append(train_files(config, nlu_file, model, rasa_venv))
        return predict(model, test, rasa_venv, timings)


def cross_validate(data: TrainingData, folds: int, config: Path, rasa_venv: Path, timings: Timings) -> list[Prediction]:
    """Every example predicted by a model that did not see it, over ``folds`` stratified folds."""
    parts = stratified_folds(data.examples, folds)
    predictions: list[Prediction] = []
    for index, test in enumerate(parts):
        train = tuple(e for i, part in enumerate(parts) if i != index for e in part)
        predictions += train_and_predict(TrainingData(train, data.extras), test, config, rasa_venv, timings)
    return predictions


def score(predictions: list[Prediction], policy: Policy) -> dict[str, Any]:
    """Accuracy (top-1 and with the policy), macro-F1 with the policy, per intent, confusions, out-of-scope."""
    labels = sorted({p.label for p in predictions} | {REJECTED})
    decided = [(p.label, policy.label(p)) for p in predictions]
    per_intent = {}
    for label in labels:
        tp = sum(1 for t, d in decided if t == label and d == label)
        fp = sum(1 for t, d in decided if t != label and d == label)
        fn = sum(1 for t, d in decided if t == label and d != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    scored = [v for v in per_intent.values() if v["support"]]
    confusions = Counter((t, d) for t, d in decided if t != d)
    return {
        "examples": len(predictions),
        "accuracy_top1": sum(p.intent == p.label for p in predictions) / len(predictions),
        "accuracy": sum(t == d for t, d in decided) / len(decided),
        "macro_f1": sum(v["f1"] for v in scored) / len(scored),
        "accepted_share": sum(d != REJECTED for _, d in decided) / len(decided),
        "per_intent": per_intent,
        "confusions": [{"true": t, "predicted": d, "count": n} for (t, d), n in confusions.most_common(15)],
        "out_of_scope": {k: per_intent[REJECTED][k] for k in ("precision", "recall", "support")},
        "confidence_histogram": histogram(predictions),
    }


def histogram(predictions: list[Prediction], bins: int = 10) -> list[dict[str, Any]]:
    """How many right and wrong top-1 predictions fall in each confidence band."""
    rows = [{"from": i / bins, "to": (i + 1) / bins, "correct": 0, "wrong": 0} for i in range(bins)]
    for p in predictions:
        row = rows[min(int(p.confidence * bins), bins - 1)]
        row["correct" if p.intent == p.label else "wrong"] += 1
    return rows


def suggest_policy(predictions: list[Prediction]) -> Policy:
    """The threshold and margin that maximise macro-F1 when rejected utterances count as out of scope."""
    best = Policy(0.0, 0.0)
    best_f1 = -1.0
    for threshold in [t / 20 for t in range(0, 19)]:
        for margin in (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2):
            f1 = score(predictions, Policy(threshold, margin))["macro_f1"]
            if f1 > best_f1 + 1e-9:
                best, best_f1 = Policy(threshold, margin), f1
    return best


def off_topic_rejection(predictions: list[Prediction], policy: Policy) -> dict[str, Any]:
    """Share of off-topic sentences that the policy rejects or classifies as out of scope."""
    rejected = sum(policy.label(p) == REJECTED for p in predictions)
    slipped = Counter(p.intent for p in predictions if policy.label(p) != REJECTED)
    return {
        "sentences": len(predictions),
        "rejected": rejected / len(predictions),
        "accepted_as": dict(slipped.most_common(10)),
    }


def policy_dict(policy: Policy) -> dict[str, float]:
    return asdict(policy)
