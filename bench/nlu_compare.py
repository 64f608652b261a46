"""Compare NLU pipelines on the example bots: accuracy, out-of-scope rejection, training, load and parse times.

    .venv/bin/python bench/nlu_compare.py [--folds 5] [--langs fr en] [--out bench/out/nlu_compare.json]

For each bot and each pipeline (the bot's own config.yml: logistic regression; bench/nlu/diet-<lang>.yml: DIET),
it runs `callbot nlu evaluate`'s machinery: k-fold cross-validation with the bot's policy, the threshold the
evaluation suggests, and rejection of the bot's held-out off-topic sentences (tests/out_of_scope.txt) by a model
trained on all the data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.evaluation_report import EvaluationRequest, run_evaluation  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--langs", nargs="+", default=["fr", "en"])
    parser.add_argument("--pipelines", nargs="+", default=["logreg", "diet"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "nlu_compare.json")
    args = parser.parse_args()
    results = []
    print(
        f"{'bot':<4}{'pipeline':<9}{'top-1':>7}{'policy acc':>11}{'macro-F1':>9}{'OOS P/R':>14}{'off-topic':>10}"
        f"{'train s':>8}{'load s':>7}{'parse ms':>9}   suggested policy"
    )
    for lang in args.langs:
        bot = ROOT / "bots" / lang
        for pipeline in args.pipelines:
            config = bot / "config.yml" if pipeline == "logreg" else ROOT / "bench" / "nlu" / f"diet-{lang}.yml"
            request = EvaluationRequest(
                bot,
                None,
                None,
                config,
                args.folds,
                bot / "tests" / "out_of_scope.txt",
                ROOT / "models",
                ROOT / ".venv-rasa",
            )
            report = run_evaluation(request)
            results.append({"bot": lang, "pipeline": pipeline, **report})
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
            m, t, s = report["metrics"], report["timings"], report["suggested_policy"]
            oos = m["out_of_scope"]
            print(
                f"{lang:<4}{pipeline:<9}{m['accuracy_top1']:>7.1%}{m['accuracy']:>11.1%}{m['macro_f1']:>9.1%}"
                f"{oos['precision']:>8.0%}/{oos['recall']:<5.0%}{report['off_topic']['rejected']:>10.1%}"
                f"{t['train_seconds_median']:>8.1f}{t['model_load_seconds_median']:>7.1f}{t['parse_ms_median']:>9.1f}"
                f"   {s['threshold']:.2f} / {s['margin']:.2f}",
                flush=True,
            )
            at, off_at = report["metrics_at_suggested_policy"], report["off_topic_at_suggested_policy"]
            print(
                f"{'':<13}at the suggested policy: accuracy {at['accuracy']:.1%}, macro-F1 {at['macro_f1']:.1%}, "
                f"off-topic rejected {off_at['rejected']:.1%}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"full reports: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
