"""The generic HTTP hand-off: a transfer to a queue whose target is ``type: webhook``.

We POST the call's context (caller, intent, entities, transcript...) so that the agent sees why the customer
calls; the receiver answers where to connect the caller. The request is signed (HMAC-SHA256 over
``timestamp.body``, header ``X-Callbot-Signature: t=<unix time>,v1=<hex>``), retried on network errors, timeouts,
429 and 5xx, and each attempt is bounded by the queue's ``timeout_s``. When every attempt fails the caller goes
to the overflow mailbox; nothing here raises anything but ``HandoffError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from callbot.errors import CallbotError
from routing.routing_config import TransferTarget


class HandoffError(CallbotError):
    """The hand-off webhook did not accept the call (after its retries)."""


@dataclass(frozen=True, slots=True)
class HandoffResult:
    connect: TransferTarget
    attempts: int
    status: int


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def hand_off(
    target: TransferTarget, context: dict[str, Any], client: httpx.AsyncClient, *, backoff_s: float = 0.25
) -> HandoffResult:
    """POST ``context`` to the webhook of ``target``; the destination it answers with."""
    body = json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode()
    secret = os.environ.get(target.secret_env) if target.secret_env else None
    if target.secret_env and not secret:
        raise HandoffError(f"the hand-off secret variable {target.secret_env} is not set")
    last_error = ""
    for attempt in range(1, target.retries + 2):
        headers = {"Content-Type": "application/json", "User-Agent": "callbot-handoff"}
        if secret:
            headers["X-Callbot-Signature"] = sign(secret, int(time.time()), body)
        try:
            response = await client.post(target.value, content=body, headers=headers, timeout=target.timeout_s)
        except httpx.HTTPError as exc:
            last_error = f"{exc.__class__.__name__}: {exc}"
        else:
            if response.status_code == 429 or response.status_code >= 500:
                last_error = f"HTTP {response.status_code}"
            elif response.status_code >= 300:
                raise HandoffError(f"{target.value} refused the call: HTTP {response.status_code}")
            else:
                return HandoffResult(_destination(target.value, response), attempt, response.status_code)
        if attempt <= target.retries:
            await asyncio.sleep(backoff_s * attempt)
    raise HandoffError(f"{target.value} unreachable after {target.retries + 1} attempts: {last_error}")


def _destination(url: str, response: httpx.Response) -> TransferTarget:
    try:
        connect = response.json()["connect"]
        destination = TransferTarget.model_validate(connect)
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise HandoffError(
            f"{url} answered {response.status_code} without a usable destination; expected JSON "
            '{"connect": {"type": "sip"|"number"|"queue", "value": "..."}}'
        ) from exc
    if destination.type == "webhook":
        raise HandoffError(f"{url} answered with another webhook; it must name a number, SIP URI or queue")
    return destination
