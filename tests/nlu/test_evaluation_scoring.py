"""Scoring and the confidence policy, on hand-made predictions."""

from __future__ import annotations

import pytest

from nlu.evaluation import Policy, Prediction, histogram, off_topic_rejection, score, suggest_policy


def p(label: str, intent: str, confidence: float, margin: float = 0.5) -> Prediction:
    return Prediction(text="x", label=label, intent=intent, confidence=confidence, margin=margin, parse_ms=1.0)


PREDICTIONS = [
    p("greet", "greet", 0.9),
    p("greet", "greet", 0.8),
    p("greet", "goodbye", 0.4),  # wrong but unsure
    p("goodbye", "goodbye", 0.95),
    p("goodbye", "goodbye", 0.6, margin=0.01),  # right but ambiguous
    p("out_of_scope", "greet", 0.3),  # off-topic, low confidence
    p("out_of_scope", "out_of_scope", 0.7),
]


def test_policy_rejects_low_confidence_and_ambiguity():
    policy = Policy(threshold=0.5, margin=0.05)
    assert [policy.label(x) for x in PREDICTIONS] == [
        "greet",
        "greet",
        "out_of_scope",
        "goodbye",
        "out_of_scope",
        "out_of_scope",
        "out_of_scope",
    ]


def test_score_with_policy():
    metrics = score(PREDICTIONS, Policy(threshold=0.5, margin=0.05))
    assert metrics["accuracy_top1"] == pytest.approx(5 / 7)
    assert metrics["accuracy"] == pytest.approx(5 / 7)  # the unsure error and the ambiguous hit swap
    assert metrics["out_of_scope"] == {"precision": pytest.approx(2 / 4), "recall": 1.0, "support": 2}
    assert metrics["per_intent"]["greet"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert {"true": "greet", "predicted": "out_of_scope", "count": 1} in metrics["confusions"]


def test_histogram_counts_right_and_wrong_by_confidence():
    rows = histogram(PREDICTIONS)
    assert len(rows) == 10 and sum(r["correct"] + r["wrong"] for r in rows) == len(PREDICTIONS)
    assert rows[9] == {"from": 0.9, "to": 1.0, "correct": 2, "wrong": 0}
    assert rows[3]["wrong"] == 1 and rows[4]["wrong"] == 1


def test_suggested_policy_is_the_best_on_the_data():
    best = suggest_policy(PREDICTIONS)
    best_f1 = score(PREDICTIONS, best)["macro_f1"]
    assert best_f1 >= score(PREDICTIONS, Policy(0.0, 0.0))["macro_f1"]
    assert best_f1 >= score(PREDICTIONS, Policy(0.5, 0.05))["macro_f1"]
    assert 0.3 < best.threshold <= 0.6


def test_off_topic_rejection():
    off = [p("out_of_scope", "greet", 0.9), p("out_of_scope", "greet", 0.2), p("out_of_scope", "out_of_scope", 0.8)]
    result = off_topic_rejection(off, Policy(0.5, 0.0))
    assert result == {"sentences": 3, "rejected": pytest.approx(2 / 3), "accepted_as": {"greet": 1}}
