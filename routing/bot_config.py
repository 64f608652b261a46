"""The bot folder's ``bot.yml``: prompts, answers, what each intent does, keypad menus and dialogue policy.

Validated when the service starts; any error names the file, the key and the fix, and the service refuses to boot.
Skills, queues, hours and routing rules live beside it in ``routing.yml`` (``routing/routing_config.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from routing.actions import OVERFLOW_REASONS, Action, ActionType, AnswerAction, HangupAction, MenuAction
from routing.config_file import Strict, read_yaml, validate

_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class MenuOption(Strict):
    """A keypad choice: either behave as if the caller had said ``intent``, or act directly."""

    label: str = ""
    intent: str | None = None
    action: Action | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MenuOption:
        if (self.intent is None) == (self.action is None):
            raise ValueError("a menu option needs exactly one of 'intent' or 'action'")
        return self


class KeypadMenu(Strict):
    prompt: str = Field(min_length=1, description="must read out the keys of 'options'")
    options: dict[str, MenuOption] = Field(min_length=1)

    @field_validator("options", mode="before")
    @classmethod
    def _digits_as_text(cls, value: object) -> object:
        # YAML reads an unquoted `1:` as a number; a keypad key is text either way
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class NluPolicy(Strict):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    ambiguity_margin: float = Field(default=0.1, ge=0.0, le=1.0)


class DialoguePolicy(Strict):
    max_reprompts: int = Field(default=2, ge=0, le=5, description="failed turns before the DTMF menu")
    max_menu_attempts: int = Field(default=2, ge=1, le=5)
    max_turns: int = Field(default=12, ge=1)
    silence_timeout_s: float = Field(default=8.0, gt=0)


class RecordingPolicy(Strict):
    """How a message is taken after the beep."""

    max_duration_s: float = Field(default=120, gt=0, le=600)
    end_silence_s: float = Field(default=4, gt=0, le=30, description="silence after speech that ends the message")
    start_timeout_s: float = Field(default=10, gt=0, le=60, description="ends the message when the caller says nothing")
    finish_key: str = Field(default="#", pattern=r"^[0-9*#]$")


class OverflowPrompts(Strict):
    """What the caller hears before leaving a message, by the reason the call went to the mailbox."""

    closed: str
    no_agent: str
    queue_full: str
    not_understood: str
    caller_request: str


class Prompts(Strict):
    greeting: str
    reprompt: str
    menu_invalid: str
    anything_else: str
    transfer: str
    goodbye: str
    overflow: OverflowPrompts
    message_saved: str = Field(description="said after the message when the caller is still on the line")
    technical_issue: str


class BotConfig(Strict):
    language: str = Field(pattern=r"^[a-z]{2}$")
    name: str = ""
    nlu: NluPolicy = NluPolicy()
    dialogue: DialoguePolicy = DialoguePolicy()
    recording: RecordingPolicy = RecordingPolicy()
    prompts: Prompts
    responses: dict[str, list[str]]
    intents: dict[str, Action]
    menus: dict[str, KeypadMenu]

    @model_validator(mode="after")
    def _references(self) -> BotConfig:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> Iterator[str]:
        if "main" not in self.menus:
            yield "menus.main: required; it is read when the caller is not understood or speech is unavailable"
        for name, intent_action in self.intents.items():
            yield from self.action_problems(f"intents.{name}", intent_action)
        for menu_id, menu in self.menus.items():
            for digit, option in menu.options.items():
                where = f"menus.{menu_id}.options.{digit}"
                if not re.fullmatch(r"[0-9*#]", digit):
                    yield f"{where}: a menu key must be one keypad digit, 0-9, * or #"
                if option.intent is not None and option.intent not in self.intents:
                    yield f"{where}.intent: unknown intent '{option.intent}'; add it under 'intents'"
                if option.action is not None:
                    yield from self.action_problems(f"{where}.action", option.action)
        for rid, templates in self.responses.items():
            if not templates:
                yield f"responses.{rid}: give at least one text"

    def action_problems(self, where: str, action: ActionType) -> Iterator[str]:
        """Problems of an action's references to responses and menus (skills are checked against routing.yml)."""
        if isinstance(action, AnswerAction | HangupAction) and action.response not in (None, *self.responses):
            yield f"{where}.response: unknown response '{action.response}'; add it under 'responses' in bot.yml"
        if isinstance(action, MenuAction) and action.menu not in self.menus:
            yield f"{where}.menu: unknown menu '{action.menu}'; add it under 'menus' in bot.yml"

    def pick_response(self, response_id: str, entities: dict[str, str]) -> str:
        """The first template of ``response_id`` whose every ``{slot}`` is filled by ``entities``."""
        for template in self.responses[response_id]:
            slots = _SLOT.findall(template)
            if all(slot in entities for slot in slots):
                return _SLOT.sub(lambda m: entities[m.group(1)], template)
        return _SLOT.sub("", self.responses[response_id][-1])

    def overflow_prompt(self, reason: str) -> str:
        return str(getattr(self.prompts.overflow, reason if reason in OVERFLOW_REASONS else "not_understood"))


def load_bot_config(bot_dir: Path) -> BotConfig:
    """Read and validate ``bot_dir/bot.yml``."""
    path = bot_dir / "bot.yml"
    raw = read_yaml(path, "point CALLBOT_BOT_DIR at a bot folder (for example bots/fr)")
    return validate(BotConfig, raw, path)
