"""The bot folder's ``bot.yml``: prompts, answers, per-intent actions, DTMF menu and transfer targets.

Validated when the service starts; any error names the file, the key and the fix, and the service refuses to boot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callbot.errors import ConfigError

_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransferTarget(_Strict):
    """Where a transfer goes on the Twilio path: a phone number, a SIP URI or a Twilio queue name."""

    type: Literal["number", "sip", "queue"]
    value: str = Field(min_length=1)
    caller_id: str | None = None


class Queue(_Strict):
    target: TransferTarget
    description: str = ""


class AnswerAction(_Strict):
    action: Literal["answer"]
    response: str


class TransferAction(_Strict):
    action: Literal["transfer"]
    queue: str


class OverflowAction(_Strict):
    action: Literal["overflow"]
    reason: Literal["closed", "no_agent", "queue_full", "not_understood", "caller_request"] = "not_understood"


class HangupAction(_Strict):
    action: Literal["hangup"]
    response: str | None = None


IntentAction = Annotated[AnswerAction | TransferAction | OverflowAction | HangupAction, Field(discriminator="action")]


class MenuOption(_Strict):
    """A keypad choice: either behave as if the caller had said ``intent``, or act directly."""

    label: str = ""
    intent: str | None = None
    action: IntentAction | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MenuOption:
        if (self.intent is None) == (self.action is None):
            raise ValueError("a menu option needs exactly one of 'intent' or 'action'")
        return self


class NluPolicy(_Strict):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    ambiguity_margin: float = Field(default=0.1, ge=0.0, le=1.0)


class DialoguePolicy(_Strict):
    max_reprompts: int = Field(default=2, ge=0, le=5, description="failed turns before the DTMF menu")
    max_menu_attempts: int = Field(default=2, ge=1, le=5)
    max_turns: int = Field(default=12, ge=1)
    silence_timeout_s: float = Field(default=8.0, gt=0)


class Prompts(_Strict):
    greeting: str
    reprompt: str
    menu: str
    menu_invalid: str
    anything_else: str
    transfer: str
    goodbye: str
    overflow: str
    technical_issue: str


class BotConfig(_Strict):
    language: str = Field(pattern=r"^[a-z]{2}$")
    name: str = ""
    timezone: str = "UTC"
    nlu: NluPolicy = NluPolicy()
    dialogue: DialoguePolicy = DialoguePolicy()
    prompts: Prompts
    responses: dict[str, list[str]]
    intents: dict[str, IntentAction]
    menu: dict[str, MenuOption]
    queues: dict[str, Queue]
    default_queue: str

    @field_validator("menu", mode="before")
    @classmethod
    def _digits_as_text(cls, value: object) -> object:
        # YAML reads an unquoted `1:` as a number; a keypad key is text either way
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _references(self) -> BotConfig:
        problems: list[str] = []
        for name, intent_action in self.intents.items():
            problems += _check_action(f"intents.{name}", intent_action, self)
        for digit, option in self.menu.items():
            if not re.fullmatch(r"[0-9*#]", digit):
                problems.append(f"menu.{digit}: a menu key must be one keypad digit, 0-9, * or #")
            if option.intent is not None and option.intent not in self.intents:
                problems.append(f"menu.{digit}.intent: unknown intent '{option.intent}'; add it under 'intents'")
            if option.action is not None:
                problems += _check_action(f"menu.{digit}.action", option.action, self)
        if self.default_queue not in self.queues:
            problems.append(f"default_queue: unknown queue '{self.default_queue}'; define it under 'queues'")
        for rid, templates in self.responses.items():
            if not templates:
                problems.append(f"responses.{rid}: give at least one text")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def pick_response(self, response_id: str, entities: dict[str, str]) -> str:
        """The first template of ``response_id`` whose every ``{slot}`` is filled by ``entities``."""
        for template in self.responses[response_id]:
            slots = _SLOT.findall(template)
            if all(slot in entities for slot in slots):
                return _SLOT.sub(lambda m: entities[m.group(1)], template)
        return _SLOT.sub("", self.responses[response_id][-1])


def _check_action(
    where: str, action: AnswerAction | TransferAction | OverflowAction | HangupAction, bot: BotConfig
) -> list[str]:
    if isinstance(action, AnswerAction | HangupAction) and action.response not in (None, *bot.responses):
        return [f"{where}.response: unknown response '{action.response}'; add it under 'responses'"]
    if isinstance(action, TransferAction) and action.queue not in bot.queues:
        return [f"{where}.queue: unknown queue '{action.queue}'; define it under 'queues'"]
    return []


def load_bot_config(bot_dir: Path) -> BotConfig:
    """Read and validate ``bot_dir/bot.yml``."""
    path = bot_dir / "bot.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; point CALLBOT_BOT_DIR at a bot folder (for example bots/fr)") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        return BotConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
