"""``callbot nlu evaluate``: runs an evaluation and presents it as a table and a JSON report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callbot.errors import ConfigError
from nlu.evaluation import (
    Policy,
    Prediction,
    Timings,
    cross_validate,
    off_topic_rejection,
    policy_dict,
    predict,
    score,
    suggest_policy,
    train_and_predict,
)
from nlu.training import pipeline_language, train
from nlu.training_data import Example, TrainingData, load_training_data, with_digits
from routing.bot_config import load_bot_config


@dataclass(frozen=True, slots=True)
class EvaluationRequest:
    bot_dir: Path | None
    train_file: Path | None
    test_file: Path | None
    config: Path | None
    folds: int
    off_topic: Path | None
    models_dir: Path
    rasa_venv: Path


def run_evaluation(request: EvaluationRequest) -> dict[str, Any]:
    config = request.config or (request.bot_dir / "config.yml" if request.bot_dir else None)
    if config is None or not config.is_file():
        raise ConfigError(f"no NLU pipeline config: give --config FILE or --bot DIR (looked for {config})")
    policy = Policy(0.5, 0.1)
    if request.bot_dir is not None:
        nlu = load_bot_config(request.bot_dir).nlu
        policy = Policy(nlu.threshold, nlu.ambiguity_margin)
    timings = Timings()
    language = pipeline_language(config)
    if request.train_file is not None and request.test_file is not None:
        data = with_digits(load_training_data(request.train_file), language)
        test = with_digits(load_training_data(request.test_file), language)
        predictions = train_and_predict(data, test.examples, config, request.rasa_venv, timings)
        method: dict[str, Any] = {
            "method": "held-out test set",
            "train": str(request.train_file),
            "test": str(request.test_file),
        }
    elif request.bot_dir is not None:
        data = with_digits(load_training_data(request.bot_dir / "nlu.yml"), language)
        predictions = cross_validate(data, request.folds, config, request.rasa_venv, timings)
        method = {"method": f"{request.folds}-fold stratified cross-validation", "data": str(request.bot_dir)}
    else:
        raise ConfigError("give --bot DIR (cross-validation) or --train FILE --test FILE")
    off_topic_file = request.off_topic
    default_off_topic = request.bot_dir / "tests" / "out_of_scope.txt" if request.bot_dir else None
    if off_topic_file is None and default_off_topic is not None and default_off_topic.is_file():
        off_topic_file = default_off_topic
    off_topic = (
        _off_topic_predictions(off_topic_file, request, data, config, language) if off_topic_file is not None else []
    )
    # the policy is chosen on what callers really bring: requests (cross-validated) and off-topic sentences
    suggested = suggest_policy(predictions + off_topic)
    report: dict[str, Any] = {
        **method,
        "config": str(config),
        "intents": len(data.intents),
        "training_examples": len(data.examples),
        "policy": policy_dict(policy),
        "metrics": score(predictions, policy),
        "suggested_policy": policy_dict(suggested),
        "suggested_policy_basis": "macro-F1 over the test predictions"
        + (" and the off-topic sentences" if off_topic else ""),
        "metrics_at_suggested_policy": score(predictions, suggested),
        "timings": timings.summary(),
    }
    if off_topic_file is not None:
        report["off_topic"] = {"file": str(off_topic_file), **off_topic_rejection(off_topic, policy)}
        report["off_topic_at_suggested_policy"] = off_topic_rejection(off_topic, suggested)
    return report


def _off_topic_predictions(
    path: Path, request: EvaluationRequest, data: TrainingData, config: Path, language: str
) -> list[Prediction]:
    """Off-topic sentences against a model trained on all the data (the bot's own model when there is one)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    off_topic = TrainingData(tuple(Example(line, "out_of_scope", line) for line in lines))
    sentences = with_digits(off_topic, language).examples
    timings = Timings()
    if request.bot_dir is not None and request.config is None:
        model = train(request.bot_dir, request.models_dir, request.rasa_venv).model_path
        return predict(model, sentences, request.rasa_venv, timings)
    return train_and_predict(data, sentences, config, request.rasa_venv, timings)


def format_report(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    policy, suggested = report["policy"], report["suggested_policy"]
    timings = report["timings"]
    lines = [
        f"{report['method']} — {report['training_examples']} examples, {report['intents']} intents, "
        f"pipeline {report['config']}",
        f"accuracy (top-1)            {metrics['accuracy_top1']:.1%}",
        f"accuracy (with the policy)  {metrics['accuracy']:.1%}   macro-F1 {metrics['macro_f1']:.1%}   "
        f"accepted {metrics['accepted_share']:.1%}",
        f"policy: threshold {policy['threshold']:.2f}, margin {policy['margin']:.2f}   "
        f"suggested by this evaluation: threshold {suggested['threshold']:.2f}, margin {suggested['margin']:.2f}",
        f"out of scope (rejected or out_of_scope): precision {metrics['out_of_scope']['precision']:.1%}, "
        f"recall {metrics['out_of_scope']['recall']:.1%} over {metrics['out_of_scope']['support']} examples",
        f"training {timings['train_seconds_median']:.1f} s, model load {timings['model_load_seconds_median']:.1f} s, "
        f"parse {timings['parse_ms_median']:.1f} ms median / {timings['parse_ms_p95']:.1f} ms p95",
    ]
    if "off_topic" in report:
        off = report["off_topic"]
        lines.append(f"off-topic sentences rejected: {off['rejected']:.1%} of {off['sentences']} ({off['file']})")
    at = report["metrics_at_suggested_policy"]
    lines.append(
        f"with the suggested policy: accuracy {at['accuracy']:.1%}, macro-F1 {at['macro_f1']:.1%}"
        + (
            f", off-topic rejected {report['off_topic_at_suggested_policy']['rejected']:.1%}"
            if "off_topic" in report
            else ""
        )
    )
    lines += ["", f"{'intent':<28}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, row in sorted(metrics["per_intent"].items(), key=lambda item: item[1]["f1"]):
        if row["support"]:
            lines.append(
                f"{name:<28}{row['precision']:>10.1%}{row['recall']:>8.1%}{row['f1']:>8.1%}{row['support']:>9}"
            )
    if metrics["confusions"]:
        lines += ["", "most frequent confusions (true -> decided):"]
        lines += [f"  {c['count']:>4}  {c['true']} -> {c['predicted']}" for c in metrics["confusions"][:10]]
    lines += ["", "confidence of top-1 predictions:   correct / wrong"]
    lines += [
        f"  {row['from']:.1f}-{row['to']:.1f}  {row['correct']:>6} / {row['wrong']}"
        for row in metrics["confidence_histogram"]
    ]
    return "\n".join(lines)
