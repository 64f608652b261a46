"""Train and publish from the console: one job at a time trains a candidate model from the bot folder's current
data, compares it with the published model on held-out utterances, and waits for operations to publish it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callbot.errors import CallbotError
from callbot.resources import Resources
from nlu.model_comparison import compare, evaluate, held_out_cases
from nlu.publishing import publish, published_model
from nlu.training import train

log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    state: str = "idle"  # idle, training, evaluating, ready, failed, published
    author: str = ""
    started_at: datetime | None = None
    candidate: Path | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)


class Trainer:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.status = TrainingState()
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, author: str) -> bool:
        if self.busy:
            return False
        self.status = TrainingState("training", author, datetime.now(UTC))
        self._task = asyncio.create_task(self._run(), name="console-training")
        return True

    def publish(self, author: str) -> Path:
        status = self.status
        if status.state != "ready" or status.candidate is None:
            raise CallbotError("nothing to publish: train and evaluate first")
        settings = self.resources.settings
        publish(settings.bot_dir, settings.models_dir, status.candidate)
        status.state = "published"
        status.steps.append(f"published by {author}")
        log.info("NLU model %s published by %s", status.candidate.name, author)
        return status.candidate

    async def _run(self) -> None:
        settings = self.resources.settings
        status = self.status
        try:
            result = await asyncio.to_thread(train, settings.bot_dir, settings.models_dir, settings.rasa_venv)
            status.candidate = result.model_path
            status.steps.append("model up to date" if result.skipped else f"trained in {result.seconds:.0f} s")
            status.state = "evaluating"
            bot = self.resources.bot
            cases = held_out_cases(settings.bot_dir)
            policy = (bot.language, bot.nlu.threshold, bot.nlu.ambiguity_margin, settings.rasa_venv)
            candidate = await evaluate(result.model_path, cases, *policy)
            status.steps.append(f"candidate: {candidate['accuracy']:.1%} of {len(cases)} held-out utterances")
            current = published_model(settings.bot_dir, settings.models_dir)
            previous = None
            if current is not None and current != result.model_path:
                previous = await evaluate(current, cases, *policy)
                status.steps.append(f"published: {previous['accuracy']:.1%}")
            status.report = compare(candidate, previous)
            status.state = "ready"
        except (CallbotError, OSError) as exc:
            status.state, status.error = "failed", str(exc)
            log.error("console training failed: %s", exc)
