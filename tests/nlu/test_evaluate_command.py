"""`callbot nlu evaluate` end to end, on real Rasa, with a small public-benchmark style CSV."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from nlu.training_data import load_training_data
from tests.conftest import ROOT

INTENTS = ("opening_hours", "lost_stolen_card", "talk_to_advisor")


def write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def test_evaluate_a_held_out_csv_with_off_topic_sentences(tmp_path):
    data = load_training_data(ROOT / "bots" / "fr" / "nlu.yml")
    rows = {intent: [e.text for e in data.examples if e.intent == intent] for intent in INTENTS}
    write_csv(tmp_path / "train.csv", [(t, i) for i in INTENTS for t in rows[i][:20]])
    write_csv(tmp_path / "test.csv", [(t, i) for i in INTENTS for t in rows[i][20:26]])
    (tmp_path / "off_topic.txt").write_text("il fait beau aujourd'hui\nune pizza quatre fromages svp\n")
    report_path = tmp_path / "report.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "callbot.cli",
            "nlu",
            "evaluate",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--config",
            str(ROOT / "bots" / "fr" / "config.yml"),
            "--off-topic",
            str(tmp_path / "off_topic.txt"),
            "--report",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "accuracy (top-1)" in completed.stdout and "off-topic sentences rejected" in completed.stdout
    report = json.loads(report_path.read_text())
    metrics = report["metrics"]
    assert report["method"] == "held-out test set" and metrics["examples"] == 18
    assert set(INTENTS) <= set(metrics["per_intent"])
    assert metrics["accuracy_top1"] >= 0.7, "three well-separated intents"
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert sum(r["correct"] + r["wrong"] for r in metrics["confidence_histogram"]) == 18
    assert report["off_topic"]["sentences"] == 2
    assert report["timings"]["train_seconds_median"] > 0 and report["timings"]["parse_ms_median"] > 0
    assert 0.0 <= report["suggested_policy"]["threshold"] <= 0.9


def test_evaluate_needs_data(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "callbot.cli",
            "nlu",
            "evaluate",
            "--train",
            str(tmp_path / "missing.csv"),
            "--test",
            str(tmp_path / "missing.csv"),
            "--config",
            str(ROOT / "bots" / "fr" / "config.yml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert "missing.csv" in completed.stderr and "Traceback" not in completed.stderr
