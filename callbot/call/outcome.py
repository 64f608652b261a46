"""How the bot's part of a call ended, as the transports carry it out: a typed value from the decision to whoever
acts on it (a TwiML document, an ARI request), and to the call record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from routing.routing_config import TransferTarget


@dataclass(frozen=True, slots=True)
class CallOutcome:
    outcome: str
    """``answered``, ``transfer``, ``overflow`` or ``hangup``."""
    reason: str | None = None
    queue: str | None = None
    target: TransferTarget | None = None
    """Where a transfer connects the caller, with the caller id to present."""
    skill: str | None = None

    @property
    def target_text(self) -> str | None:
        """``sip:sip:premium@pbx``, ``queue:advisors``...: how the call list shows the target."""
        return describe_target(self.target) if self.target is not None else None


def describe_target(target: TransferTarget) -> str:
    return f"{target.type}:{target.value}"


def target_to_json(target: TransferTarget | None) -> dict[str, Any] | None:
    """The target as the call record stores it (the whole target: caller id included)."""
    return target.model_dump(exclude_defaults=True) if target is not None else None


def target_from_json(data: Any) -> TransferTarget | None:
    """A stored target, or None when there is none or it no longer validates."""
    if not isinstance(data, dict):
        return None
    try:
        return TransferTarget.model_validate(data)
    except ValidationError:
        return None
