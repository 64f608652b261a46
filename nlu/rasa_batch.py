"""Parse many texts with one Rasa model, offline. Runs with the Rasa virtualenv's Python (3.10), not the app's:

    .venv-rasa/bin/python nlu/rasa_batch.py MODEL.tar.gz < texts.jsonl > results.jsonl

Input: one JSON string per line. Output: a first line {"load_seconds": ...}, then one JSON object per text
(intent, confidence, ranking, entities, parse_ms). Imports only Rasa and the standard library.
"""

import asyncio
import inspect
import json
import logging
import os
import sys
import time
import warnings


async def main(model_path: str) -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from rasa.core.agent import Agent

    started = time.perf_counter()
    agent = Agent.load(model_path)
    print(json.dumps({"load_seconds": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        text = json.loads(line)
        started = time.perf_counter()
        result = agent.parse_message(text)
        if inspect.isawaitable(result):
            result = await result
        elapsed = (time.perf_counter() - started) * 1000
        intent = result.get("intent") or {}
        print(
            json.dumps(
                {
                    "intent": intent.get("name"),
                    "confidence": float(intent.get("confidence") or 0.0),
                    "ranking": [[r["name"], float(r["confidence"])] for r in result.get("intent_ranking") or []][:5],
                    "entities": [[e["entity"], str(e["value"])] for e in result.get("entities") or []],
                    "parse_ms": elapsed,
                },
                ensure_ascii=False,
            ),
            flush=True,
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    asyncio.run(main(sys.argv[1]))
