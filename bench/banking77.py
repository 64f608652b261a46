"""Banking77 with the bot pipeline: a stratified 20 % of the public training set held out, the rest trained on.

    .venv/bin/python bench/banking77.py [--config bots/en/config.yml] [--out bench/out/banking77.json]

Prints accuracy, macro-F1 and parse latency. For reference, BERT fine-tuned reaches 93.66 % on the official test
split (a different split: this one is carved out of the training set, as the official test set is not used here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.evaluation import Policy, Timings, score, train_and_predict  # noqa: E402
from nlu.training_data import load_training_data, stratified_split  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "nlu" / "banking77" / "train.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "bots" / "en" / "config.yml")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "banking77.json")
    args = parser.parse_args()
    data = load_training_data(args.data)
    train, test = stratified_split(data, 0.2, seed=42)
    timings = Timings()
    with tempfile.TemporaryDirectory():
        predictions = train_and_predict(train, test.examples, args.config, ROOT / ".venv-rasa", timings)
    metrics = score(predictions, Policy(0.0, 0.0))  # Banking77 has no out-of-scope class: no rejection
    summary = timings.summary()
    print(
        f"Banking77: trained on {len(train.examples)}, tested on {len(test.examples)} held-out examples "
        f"({len(data.intents)} intents), pipeline {args.config}"
    )
    print(f"accuracy {metrics['accuracy_top1']:.2%}, macro-F1 {metrics['macro_f1']:.2%}")
    print(
        f"training {summary['train_seconds_median']:.0f} s, model load {summary['model_load_seconds_median']:.1f} s, "
        f"parse {summary['parse_ms_median']:.1f} ms median / {summary['parse_ms_p95']:.1f} ms p95"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "config": str(args.config),
                "train": len(train.examples),
                "test": len(test.examples),
                "metrics": metrics,
                "timings": summary,
            },
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
