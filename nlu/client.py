"""HTTP client for Rasa's ``/model/parse``, with timeouts and a circuit breaker."""

from __future__ import annotations

import time
from typing import Any

import httpx

from callbot.errors import NluError, NluUnavailableError
from callbot.frames import NluResult

MAX_TEXT_CHARS = 1000
"""An utterance longer than this is not a phone turn; it is cut before parsing."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; lets one trial through after ``cooldown_s``."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 10.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        if self.opened_at is None:
            return False
        return time.monotonic() - self.opened_at < self.cooldown_s

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()


class RasaClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 2.0,
        *,
        token: str | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker or CircuitBreaker()
        params = {"token": token} if token else None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, params=params)

    async def parse(self, text: str) -> NluResult:
        """Understand one utterance. Raises NluUnavailableError when Rasa is down, slow or the breaker is open."""
        text = text.strip()[:MAX_TEXT_CHARS]
        if not text:
            return NluResult(text="", intent=None, confidence=0.0)
        if self.breaker.is_open:
            raise NluUnavailableError(f"Rasa at {self.base_url} failed {self.breaker.failures} times; not retried yet")
        try:
            response = await self._http.post("/model/parse", json={"text": text})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.breaker.failure()
            raise NluUnavailableError(
                f"Rasa at {self.base_url} did not answer: {exc.__class__.__name__}: {exc}"
            ) from exc
        self.breaker.success()
        return _to_result(text, body)

    async def status(self) -> dict[str, Any]:
        try:
            response = await self._http.get("/status", timeout=2.0)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NluUnavailableError(f"Rasa at {self.base_url} is not ready: {exc}") from exc
        return body if isinstance(body, dict) else {}

    async def load_model(self, model_path: str) -> None:
        """Hot-swap the served model (Rasa's ``PUT /model``)."""
        try:
            response = await self._http.put("/model", json={"model_file": model_path}, timeout=180.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise NluError(f"Rasa at {self.base_url} refused model {model_path}: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()


def _to_result(text: str, body: Any) -> NluResult:
    if not isinstance(body, dict):
        raise NluError("Rasa answered something that is not a JSON object")
    intent = body.get("intent") or {}
    ranking = tuple(
        (str(item["name"]), float(item["confidence"]))
        for item in body.get("intent_ranking") or []
        if isinstance(item, dict) and "name" in item and "confidence" in item
    )
    entities = tuple(
        (str(item["entity"]), str(item["value"]))
        for item in body.get("entities") or []
        if isinstance(item, dict) and "entity" in item and "value" in item
    )
    name = intent.get("name")
    return NluResult(
        text=text,
        intent=str(name) if name else None,
        confidence=float(intent.get("confidence") or 0.0),
        ranking=ranking,
        entities=entities,
    )
