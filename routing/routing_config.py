"""The bot folder's ``routing.yml``: skills, queues, agents, business hours, caller lists and routing rules.

Validated when the service starts (and by ``callbot routing check``); any error names the file, the key and
the fix, and the service refuses to boot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from routing.actions import Action, ActionType, TransferAction
from routing.calendars import Calendar, expand_days, parse_range
from routing.config_file import Strict, read_yaml, validate

AgentStatus = Literal["available", "busy", "wrap_up", "offline"]
AGENT_STATUSES: tuple[AgentStatus, ...] = ("available", "busy", "wrap_up", "offline")
STAFFED: frozenset[str] = frozenset({"available", "busy", "wrap_up"})

FALLBACK_INTENT = "nlu_fallback"
"""The intent routing rules see when the dialogue gave up understanding the caller (reprompts and menu spent)."""

_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
_CALLER_PATTERN = re.compile(r"^\+[0-9]{1,15}\*?$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Skill(Strict):
    description: str = ""
    fallback: str | None = Field(default=None, description="skill tried when no queue serving this one can take a call")
    announcement: str | None = Field(default=None, description="said before transferring (default: prompts.transfer)")


TARGET_TYPES = ("number", "sip", "queue", "webhook", "dialplan", "endpoint")
_DIALPLAN = re.compile(
    r"^[A-Za-z0-9_.+-]{1,80},[A-Za-z0-9_.+*#-]{1,80}(,([1-9][0-9]{0,3}|[A-Za-z_][A-Za-z0-9_-]{0,79}))?$"
)
_ENDPOINT = re.compile(r"^(PJSIP|SIP|IAX2|DAHDI|Local|WebSocket)/[^\s,&|]{1,200}$")


class TransferTarget(Strict):
    """How a call reaches a queue. Everywhere: a phone number, a SIP URI, a named queue (Twilio ``<Enqueue>``,
    Asterisk ``Queue()``), or an HTTP hand-off webhook that receives the call's context and answers where to connect
    it. On Asterisk also: a dialplan place (``context,extension[,priority]``) or a channel endpoint to dial
    (``PJSIP/advisors``). Written ``{type: sip, value: ...}`` or, shorter, ``{sip: ...}``."""

    type: Literal["number", "sip", "queue", "webhook", "dialplan", "endpoint"]
    value: str = Field(min_length=1, max_length=256)
    caller_id: str | None = None
    timeout_s: float = Field(default=3.0, gt=0, le=30, description="webhook: per attempt")
    retries: int = Field(default=2, ge=0, le=5, description="webhook: attempts after the first")
    secret_env: str | None = Field(
        default=None, description="webhook: environment variable holding the HMAC key that signs the request"
    )

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: object) -> object:
        """``{dialplan: "from-callbot,advisors"}`` is ``{type: dialplan, value: "from-callbot,advisors"}``."""
        if isinstance(data, dict) and "type" not in data:
            named = [key for key in TARGET_TYPES if key in data]
            if len(named) == 1:
                rest = {k: v for k, v in data.items() if k != named[0]}
                return {"type": named[0], "value": data[named[0]], **rest}
            if len(named) > 1:
                raise ValueError(f"a target has one type; this one names {named}")
        return data

    @model_validator(mode="after")
    def _value_fits_type(self) -> TransferTarget:
        if self.type == "number" and not _E164.match(self.value):
            raise ValueError(f"'{self.value}' is not an E.164 phone number such as +33100000001")
        if self.type == "sip" and not re.match(r"^sips?:[^@\s]+@[^\s]+$", self.value):
            raise ValueError(f"'{self.value}' is not a SIP URI such as sip:advisors@pbx.example.com")
        if self.type == "webhook" and not re.match(r"^https?://[^\s]+$", self.value):
            raise ValueError(f"'{self.value}' is not an http(s) URL")
        if self.type == "queue" and not _ID.match(self.value):
            raise ValueError(f"'{self.value}': a queue name is 1-64 letters, digits, '.', '_' or '-'")
        if self.type == "dialplan" and not _DIALPLAN.match(self.value):
            raise ValueError(
                f"'{self.value}' is not a dialplan place: write 'context,extension' or 'context,extension,priority' "
                "(e.g. 'from-callbot,advisors')"
            )
        if self.type == "endpoint" and not _ENDPOINT.match(self.value):
            raise ValueError(
                f"'{self.value}' is not an Asterisk dial string such as PJSIP/advisors or PJSIP/+33100000001@trunk"
            )
        if self.caller_id is not None and not _E164.match(self.caller_id):
            raise ValueError(f"caller_id '{self.caller_id}' is not an E.164 phone number")
        return self


class Queue(Strict):
    description: str = ""
    skills: list[str] = Field(min_length=1)
    target: TransferTarget
    hours: str | None = Field(default=None, description="calendar name; open around the clock when absent")
    max_wait_s: float = Field(default=600, gt=0, description="estimated wait above which the queue counts as full")
    max_length: int = Field(default=20, ge=0, description="waiting calls; 0: only transfer to an available agent")
    average_handle_s: float = Field(default=300, gt=0, description="for the estimated wait")
    announcement: str | None = None
    whisper: str | None = Field(
        default=None, description="said to the agent before the caller is connected ({intent}, {caller}, {skill})"
    )

    @field_validator("whisper")
    @classmethod
    def _whisper_slots(cls, value: str | None) -> str | None:
        unknown = set(re.findall(r"\{([^}]*)\}", value or "")) - {"intent", "caller", "skill"}
        if unknown:
            raise ValueError(f"whisper: unknown slot(s) {sorted(unknown)}; use {{intent}}, {{caller}} or {{skill}}")
        return value

    def whisper_for(self, intent: str, caller: str, skill: str) -> str:
        """What the agent hears before the caller is connected: the queue's whisper (else the intent), as spoken
        by a text-to-speech (``lost_card`` -> ``lost card``, a number read digit by digit)."""
        return (self.whisper or "{intent}").format(
            intent=intent.replace("_", " "), caller=" ".join(caller), skill=skill
        )


class Agent(Strict):
    name: str = ""
    skills: dict[str, int] = Field(min_length=1, description="skill -> level, 1 (beginner) to 5 (expert)")
    status: AgentStatus = Field(default="offline", description="status until the API reports one")

    @field_validator("skills")
    @classmethod
    def _levels(cls, value: dict[str, int]) -> dict[str, int]:
        for skill, level in value.items():
            if not 1 <= level <= 5:
                raise ValueError(f"skill '{skill}': level {level} is out of range; levels go from 1 to 5")
        return value


class Range(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class QueueCondition(Strict):
    """The live state of one queue (``queue``) or of the queues serving a skill (``skill``)."""

    queue: str | None = None
    skill: str | None = None
    open: bool | None = None
    available_agents: Range | None = None
    waiting: Range | None = None
    estimated_wait_s: Range | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> QueueCondition:
        if (self.queue is None) == (self.skill is None):
            raise ValueError("a queue condition names exactly one of 'queue' or 'skill'")
        return self


class TimeCondition(Strict):
    """Local time window: ``days`` (``mon-fri``, ``sat``...) and/or ``between`` (``08:00-20:00``, may cross
    midnight), and/or whether a calendar is ``open``."""

    days: list[str] | None = None
    between: str | None = None
    calendar: str | None = None
    open: bool = True

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [day for spec in value for day in expand_days(spec)]

    @field_validator("between")
    @classmethod
    def _between(cls, value: str | None) -> str | None:
        if value is not None:
            parse_range(value, overnight=True)
        return value

    @property
    def window(self) -> tuple[int, int] | None:
        return None if self.between is None else parse_range(self.between, overnight=True)


class When(Strict):
    """Every condition given must hold (and); a list inside one condition matches any of its items (or)."""

    intent: list[str] | None = None
    entities: list[str] | None = Field(default=None, description="all of these entities were heard")
    confidence: Range | None = None
    caller_in: list[str] | None = Field(default=None, description="the caller is in one of these caller lists")
    caller_not_in: list[str] | None = None
    time: TimeCondition | None = None
    queue: QueueCondition | None = None
    failed_turns: Range | None = None

    @field_validator("intent", "entities", "caller_in", "caller_not_in", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


class Rule(Strict):
    id: str = Field(pattern=_ID.pattern)
    description: str = ""
    when: When = When()
    then: Action | None = None


class RoutingConfig(Strict):
    timezone: str = Field(description="the centre's IANA time zone: hours and rule times are local to it")
    skills: dict[str, Skill]
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    queues: dict[str, Queue]
    agents: dict[str, Agent] = Field(default_factory=dict)
    caller_lists: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    default: Action = Field(description="what happens when no rule matches and the intent has no action of its own")
    failover_skill: str = Field(description="where calls go when a stage fails (Rasa down, a crash...)")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name such as Europe/Paris or America/Montreal"
            ) from exc
        return value

    @field_validator("caller_lists")
    @classmethod
    def _numbers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, numbers in value.items():
            for number in numbers:
                if not _CALLER_PATTERN.match(str(number)):
                    raise ValueError(
                        f"{name}: '{number}' is neither an E.164 number (+33612345678) "
                        "nor a prefix ending with * (+33899*)"
                    )
        return value

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        problems = [*self._skill_problems(), *self._queue_and_agent_problems(), *self._rule_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _skill_problems(self) -> Iterator[str]:
        for name, skill in self.skills.items():
            if skill.fallback is not None and skill.fallback not in self.skills:
                yield f"skills.{name}.fallback: unknown skill '{skill.fallback}'; define it under 'skills'"
        for name in self.skills:
            loop = self.fallback_loop(name)
            if loop:
                chain = " -> ".join(loop)
                yield f"skills.{name}.fallback: fallback loop {chain}; end the chain on a skill without fallback"
        served = {skill for queue in self.queues.values() for skill in queue.skills}
        for name in self.skills:
            if name not in served:
                yield f"skills.{name}: no queue serves it; add it to a queue's 'skills'"
        if self.failover_skill not in self.skills:
            yield f"failover_skill: unknown skill '{self.failover_skill}'; define it under 'skills'"

    def _queue_and_agent_problems(self) -> Iterator[str]:
        for name, queue in self.queues.items():
            for skill in queue.skills:
                if skill not in self.skills:
                    yield f"queues.{name}.skills: unknown skill '{skill}'; define it under 'skills'"
            if queue.hours is not None and queue.hours not in self.calendars:
                yield f"queues.{name}.hours: unknown calendar '{queue.hours}'; define it under 'calendars'"
        for agent_id, agent in self.agents.items():
            if not _ID.match(agent_id):
                yield f"agents.{agent_id}: an agent id is 1-64 letters, digits, '.', '_' or '-'"
            for skill in agent.skills:
                if skill not in self.skills:
                    yield f"agents.{agent_id}.skills: unknown skill '{skill}'; define it under 'skills'"

    def _rule_problems(self) -> Iterator[str]:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            where = f"rules[{index}] '{rule.id}'"
            if rule.id in seen:
                yield f"{where}: the id is used twice; rule ids must be unique"
            seen.add(rule.id)
            if rule.then is None:
                yield f"{where}: no action; add 'then:' with an action (answer, transfer, overflow, menu or hangup)"
            if rule.when.empty and index < len(self.rules) - 1:
                yield f"{where}: has no 'when', so it matches every call and the rules after it never apply"
            yield from self._condition_problems(where, rule.when)
            if rule.then is not None:
                yield from self.action_problems(f"{where}.then", rule.then)
        yield from self.action_problems("default", self.default)

    def _condition_problems(self, where: str, when: When) -> Iterator[str]:
        for name in [*(when.caller_in or []), *(when.caller_not_in or [])]:
            if name not in self.caller_lists:
                yield f"{where}.when: unknown caller list '{name}'; define it under 'caller_lists'"
        if when.time is not None and when.time.calendar is not None and when.time.calendar not in self.calendars:
            yield f"{where}.when.time.calendar: unknown calendar '{when.time.calendar}'; define it under 'calendars'"
        if when.queue is not None:
            if when.queue.queue is not None and when.queue.queue not in self.queues:
                yield f"{where}.when.queue: unknown queue '{when.queue.queue}'; define it under 'queues'"
            if when.queue.skill is not None and when.queue.skill not in self.skills:
                yield f"{where}.when.queue: unknown skill '{when.queue.skill}'; define it under 'skills'"

    def action_problems(self, where: str, action: ActionType) -> Iterator[str]:
        """Problems of an action's references to skills (responses, menus and intents are checked by the folder)."""
        if not isinstance(action, TransferAction):
            return
        if action.skill not in self.skills:
            yield f"{where}.skill: unknown skill '{action.skill}'; define it under 'skills' in routing.yml"
            return
        if action.fallback is not None:
            if action.fallback not in self.skills:
                yield f"{where}.fallback: unknown skill '{action.fallback}'; define it under 'skills' in routing.yml"
            elif action.skill in self.fallback_chain(action.fallback):
                chain = " -> ".join([action.skill, *self.fallback_chain(action.fallback)])
                yield f"{where}.fallback: fallback loop {chain}; pick a fallback that does not lead back"

    def fallback_chain(self, skill: str) -> list[str]:
        """``skill`` and the skills its fallbacks lead to, in order (stops before repeating one)."""
        chain: list[str] = []
        current: str | None = skill
        while current is not None and current not in chain and current in self.skills:
            chain.append(current)
            current = self.skills[current].fallback
        return chain

    def fallback_loop(self, skill: str) -> list[str]:
        """The loop of fallbacks starting at ``skill`` (``[a, b, a]``), or ``[]``."""
        chain = self.fallback_chain(skill)
        last = self.skills[chain[-1]].fallback if chain else None
        return [*chain, last] if last is not None and last == skill else []

    def queues_for(self, skill: str) -> list[str]:
        return [name for name, queue in self.queues.items() if skill in queue.skills]


def load_routing_config(bot_dir: Path) -> RoutingConfig:
    """Read and validate ``bot_dir/routing.yml``."""
    path = bot_dir / "routing.yml"
    raw = read_yaml(path, "every bot folder needs a routing.yml (skills, queues, hours, rules); see docs/routing.md")
    return validate(RoutingConfig, raw, path)
