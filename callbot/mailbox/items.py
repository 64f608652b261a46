"""What a mailbox item is: its workflow states and the transitions staff may make, and its filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["new", "assigned", "in_progress", "called_back", "closed"]
STATUSES: tuple[Status, ...] = ("new", "assigned", "in_progress", "called_back", "closed")

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "in_progress", "closed"}),
    "assigned": frozenset({"new", "in_progress", "called_back", "closed"}),
    "in_progress": frozenset({"assigned", "called_back", "closed"}),
    "called_back": frozenset({"in_progress", "closed"}),
    "closed": frozenset({"in_progress"}),
}
"""Allowed status changes. ``closed`` can be reopened (in progress); ``new`` is only left, or returned to by
unassigning."""


class TransitionError(ValueError):
    """A status change that the workflow does not allow."""


def check_transition(current: str, wanted: str) -> None:
    if wanted == current:
        return
    if wanted not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none"
        raise TransitionError(f"an item that is {current} cannot become {wanted} (allowed: {allowed})")


@dataclass(frozen=True, slots=True)
class ItemFilter:
    status: str | None = None
    reason: str | None = None
    """The overflow reason or the detected/corrected reason (intent)."""
    assignee: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    caller: str | None = None
    transcription: str | None = None
