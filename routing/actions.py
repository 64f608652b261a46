"""What the bot can do with a call, as written in the bot folder: by an intent (``bot.yml``), a keypad option
(``bot.yml``) or a routing rule (``routing.yml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from routing.config_file import Strict

OverflowReason = Literal["closed", "no_agent", "queue_full", "not_understood", "caller_request"]
OVERFLOW_REASONS: tuple[OverflowReason, ...] = ("closed", "no_agent", "queue_full", "not_understood", "caller_request")


class AnswerAction(Strict):
    """Speak a response (its ``{slots}`` filled with the entities heard), then keep listening."""

    action: Literal["answer"]
    response: str


class TransferAction(Strict):
    """Hand the caller to a queue serving ``skill``; when none can take the call, follow the fallbacks."""

    action: Literal["transfer"]
    skill: str
    priority: int = Field(default=0, ge=0, le=10, description="higher is served first")
    min_level: int = Field(default=1, ge=1, le=5, description="lowest agent level accepted for the skill")
    fallback: str | None = Field(default=None, description="skill tried first when this one cannot take the call")


class OverflowAction(Strict):
    """Take a message for the overflow mailbox."""

    action: Literal["overflow"]
    reason: OverflowReason = "not_understood"


class MenuAction(Strict):
    """Read a keypad menu."""

    action: Literal["menu"]
    menu: str = "main"


class HangupAction(Strict):
    """Say goodbye (a response, or the goodbye prompt) and end the call."""

    action: Literal["hangup"]
    response: str | None = None


Action = Annotated[
    AnswerAction | TransferAction | OverflowAction | MenuAction | HangupAction, Field(discriminator="action")
]
ActionType = AnswerAction | TransferAction | OverflowAction | MenuAction | HangupAction
